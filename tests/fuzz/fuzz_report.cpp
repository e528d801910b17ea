// A compare results.json (what --against reads from the user): every report view must
// refuse a malformed one with a pf::Error, never crash or throw anything else.
#include "fuzz/fuzz_util.h"
#include "io/config_json.h"
#include "report/compare_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "results.json");
  pf::fuzz::expect_clean([&] {
    const nlohmann::json r = pf::read_json_file(path);
    (void)pf::report_table(r);
    (void)pf::report_markdown(r, {});
    (void)pf::report_html(r, "/nonexistent", {});
    (void)pf::report_against(r, r);
    (void)pf::count_regressions(r, r);
  });
  return 0;
}
