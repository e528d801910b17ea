# Sourced by the data-set scripts (make_spoken_digits.sh, make_bible_sections.sh).
# data_dir_needs_build LABEL OUT_DIR VERSION: returns 1 when OUT_DIR already holds VERSION
# (nothing to do) and 0 when it must be built: it is absent, or an older version of the
# script made it (its .complete marker says so). Exits 1 when OUT_DIR exists without the
# marker: never delete what we did not create.
data_dir_needs_build() {
  local label=$1 dir=$2 version=$3
  [ -e "$dir" ] || return 0
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$version" ]; then return 1; fi
  if [ ! -f "$dir/.complete" ]; then
    # Not ours (or a half-finished copy by hand).
    echo "$label: $dir exists but was not made by this script (no .complete marker);" \
         "move or remove it yourself" >&2
    exit 1
  fi
  echo "$label: $dir is from '$(cat "$dir/.complete")'; rebuilding as '$version'"
}
