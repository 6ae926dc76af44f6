// SPDX-License-Identifier: Apache-2.0
// report_page.h: the audit report's HTML page: the embedded template (report/assets,
// compiled into the binary) with its style, its script and the report's JSON inlined,
// so the file opens anywhere with no network and no other file.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace localist {

std::string report_page_html(const nlohmann::json& report);

}  // namespace localist
