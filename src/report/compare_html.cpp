// report.html: the markdown report's tables as HTML, with every plot embedded as a data URI
// so the file stands alone (mail it, open it offline).
#include <filesystem>
#include <sstream>

#include "io/read_file.h"
#include "report/compare_report.h"
#include "report/report_values.h"

namespace pf {

namespace fs = std::filesystem;

std::string base64_encode(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string table(const report::Rows& rows) {
  std::ostringstream os;
  os << "<table>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    os << "<tr>";
    for (const std::string& c : rows[r])
      os << (r == 0 ? "<th>" : "<td>") << esc(c) << (r == 0 ? "</th>" : "</td>");
    os << "</tr>\n";
  }
  os << "</table>\n";
  return os.str();
}

}  // namespace

namespace {
std::string html_of(const nlohmann::json& r, const std::string& dir,
                    const std::vector<std::string>& pngs);
}

std::string report_html(const nlohmann::json& r, const std::string& dir,
                        const std::vector<std::string>& pngs) {
  return report::guarded([&] { return html_of(r, dir, pngs); });
}

namespace {
std::string html_of(const nlohmann::json& r, const std::string& dir,
                    const std::vector<std::string>& pngs) {
  report::check_results(r);
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<title>postformer compare</title>\n<style>\n"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}\n"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
        "th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}\n"
        "th:first-child,td:first-child{text-align:left}\nth{background:#f3f3f3}\n"
        "img{max-width:100%;border:1px solid #eee;margin:0.5em 0}\n</style></head>\n<body>\n";
  os << "<h1>postformer compare</h1>\n<p>corpus <code>"
     << esc(r.value("/corpus/path"_json_pointer, std::string("?"))) << "</code>; "
     << esc(report::fmt(report::num(r, {"budget", "params"}) / 1e6, "%.2f"))
     << "M parameters per model; "
     << esc(report::fmt(report::num(r, {"budget", "tokens_per_arch"}) / 1e6, "%.2f"))
     << "M training tokens each, the same batches in the same order; "
     << esc(r.value("cpu", std::string("?"))) << "; " << esc(r.value("created", std::string("")))
     << "</p>\n";
  os << "<h2>Models</h2>\n" << table(report::config_rows(r));
  os << "<h2>Results</h2>\n" << table(report::main_rows(r));
  os << "<p>val bpb: validation bits per byte, lower is better. Decode: one token with the "
        "given context already in the cache or state.</p>\n";
  os << "<h2>Decode latency and state memory by context</h2>\n" << table(report::decode_rows(r));
  for (const auto& [task, rows] : report::task_rows(r))
    os << "<h2>Task: " << esc(task) << "</h2>\n" << table(rows);
  os << "<h2>Plots</h2>\n";
  for (const std::string& p : pngs)
    os << "<figure><img alt=\"" << esc(p) << "\" src=\"data:image/png;base64,"
       << base64_encode(read_file((fs::path(dir) / p).string())) << "\"><figcaption>" << esc(p)
       << "</figcaption></figure>\n";
  // A test (and a curious reader) can see whether the browser decoded every plot.
  os << "<script>window.addEventListener('load',function(){var im=document.images,ok=0;"
        "for(var i=0;i<im.length;i++)if(im[i].complete&&im[i].naturalWidth>0)ok++;"
        "document.body.dataset.plotsLoaded=ok+'/'+im.length;});</script>\n";
  os << "</body></html>\n";
  return os.str();
}
}  // namespace

}  // namespace pf
