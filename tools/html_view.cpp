// The HTML page-table view: page skeleton + embedded style, data and script.
#include "tools/html_view.hpp"

namespace mmemu::dump {

namespace {

std::string escape_html(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON safe inside <script>: '<' occurs only inside JSON strings, where \u003c means the
// same, so no "</script" or "<!--" can end or confuse the element.
std::string script_safe_json(const nlohmann::json& j) {
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string html_view(const std::vector<nlohmann::json>& dumps, std::string_view title) {
  const nlohmann::json data{{"title", title}, {"dumps", dumps}};
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + escape_html(title) + "</title>\n<style>\n";
  out += detail::kViewCss;
  out += "</style>\n</head>\n<body>\n";
  // Script errors land in the page itself, so a headless browser's DOM shows them.
  out += "<pre id=\"js-errors\"></pre>\n";
  out +=
      "<script>window.onerror = function (msg, src, line, col) {\n"
      "  var e = document.getElementById('js-errors');\n"
      "  e.textContent += 'Uncaught ' + msg + ' (line ' + line + ':' + col + ')\\n';\n"
      "  e.className = 'shown';\n};</script>\n";
  out += "<h1 id=\"title\">" + escape_html(title) + "</h1>\n<div id=\"app\"></div>\n";
  out += "<script type=\"application/json\" id=\"mmemu-data\">";
  out += script_safe_json(data);
  out += "</script>\n<script>\n";
  out += detail::kViewJs;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

}  // namespace mmemu::dump
