// Data sets by name that a script in scripts/ builds on first use:
//   spoken-digits   data/spoken-digits   scripts/make_spoken_digits.sh (espeak-ng + sox)
//   bible-sections  data/bible-sections  scripts/make_bible_sections.sh (bible-kjv)
#pragma once
#include <string>

namespace pf {

// Returns `source` unchanged unless it names one of the sets above; then returns its
// directory (relative to the working directory), first running its build script when the
// directory lacks the script's completion marker. The script is looked for beside the
// executable (build/../scripts) and under the working directory; errors name what is missing.
std::string resolve_data_source(const std::string& source);

}  // namespace pf
