// The HTML page-table view: one self-contained page (inline style and script, the dumps
// embedded as JSON, nothing fetched) that shows page-table dumps as a collapsible tree
// coloured by VMA, with the VMA list, the maple tree, frames shared after fork and, for
// several dumps, a timeline that highlights what changed between neighbours.
// Pure: it never fails; JSON that lacks keys the page expects is shown as far as it goes
// (the page reports its own script errors in an element with id "js-errors").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mmemu::dump {

// `dumps`: the objects `mmemu run --format json` writes for each dump (dump, pid, label,
// detail, arch, counters, vmas, pgtables, tree), in the order they were taken.
// `title`: the page's title (escaped here). An empty list gives a page that says so.
std::string html_view(const std::vector<nlohmann::json>& dumps, std::string_view title);

namespace detail {
// tools/html/view.css and view.js, embedded at build time (tools/html/embed.cmake).
extern const std::string_view kViewCss;
extern const std::string_view kViewJs;
}  // namespace detail

}  // namespace mmemu::dump
