// SPDX-License-Identifier: Apache-2.0
// report_page.cpp: see report_page.h.
#include "report/report_page.h"

#include "core/error.h"
#include "report/report.h"

namespace localist {

// report_assets.cpp, generated from report/assets at build time (cmake/LocalistEmbed.cmake).
const std::string& report_asset_html();
const std::string& report_asset_css();
const std::string& report_asset_js();

namespace {

void replace_once(std::string& s, const std::string& marker, const std::string& with) {
  const size_t at = s.find(marker);
  if (at == std::string::npos) throw Error("report page template: marker " + marker + " missing (a broken build)");
  s.replace(at, marker.size(), with);
}

}  // namespace

std::string report_page_html(const nlohmann::json& report) {
  // Inside <script>, "</" could end the element early: JSON allows "<\/" for it.
  std::string data = report_json_text(report, -1);
  std::string safe;
  safe.reserve(data.size() + data.size() / 64);
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '<' && i + 1 < data.size() && data[i + 1] == '/')
      safe += "<\\";
    else
      safe += data[i];
  }
  std::string page = report_asset_html();
  replace_once(page, "/*LOCALIST_CSS*/", report_asset_css());
  replace_once(page, "/*LOCALIST_JS*/", report_asset_js());
  replace_once(page, "LOCALIST_DATA", safe);  // last: the data may contain the other markers
  return page;
}

}  // namespace localist
