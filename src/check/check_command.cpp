#include "check/check_command.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "check/kernel_probes.h"

namespace ferry {
namespace {

// Fits a 100-column terminal with a column to spare.
constexpr size_t kTableWidth = 99;
constexpr size_t kNeededByWidth = 20;
constexpr std::string_view kSeparator = " | ";

// Splits text into lines of at most width columns, at spaces where it can;
// a word longer than a line is cut.
std::vector<std::string> wrap(std::string_view text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(i, end - i);
    i = end;
    if (word.empty()) break;
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    while (word.size() > width) {
      if (!line.empty()) lines.push_back(std::move(line));
      lines.emplace_back(word.substr(0, width));
      line.clear();
      word.remove_prefix(width);
    }
    if (!line.empty()) line += ' ';
    line += word;
  }
  if (!line.empty() || lines.empty()) lines.push_back(std::move(line));
  return lines;
}

std::vector<std::string> missing_required(const std::vector<ProbeResult>& probes) {
  std::vector<std::string> missing;
  for (const ProbeResult& p : probes)
    if (p.required && !p.present) missing.push_back(p.feature);
  return missing;
}

std::string verdict(const std::vector<std::string>& missing) {
  if (missing.empty()) return "dump and restore can work on this kernel";
  return fmt::format("dump and restore cannot work on this kernel: missing {}", fmt::join(missing, ", "));
}

std::string table(const std::vector<ProbeResult>& probes) {
  // Required features carry a '*' after their name, explained below the table.
  size_t feature_width = std::string_view("feature").size();
  for (const ProbeResult& p : probes) feature_width = std::max(feature_width, p.feature.size() + (p.required ? 1 : 0));
  const size_t status_width = std::string_view("present").size();
  size_t used = feature_width + kNeededByWidth + status_width + 3 * kSeparator.size();
  size_t detail_width = used + 20 < kTableWidth ? kTableWidth - used : 20;

  std::string out;
  auto row = [&](std::string_view a, std::string_view b, std::string_view c, std::string_view d) {
    std::string line = fmt::format("{:<{}}{}{:<{}}{}{:<{}}{}{}", a, feature_width, kSeparator, b, kNeededByWidth,
                                   kSeparator, c, status_width, kSeparator, d);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  row("feature", "needed by", "status", "detail");
  out += fmt::format("{:-<{}}-+-{:-<{}}-+-{:-<{}}-+-{:-<{}}\n", "", feature_width, "", kNeededByWidth, "",
                     status_width, "", detail_width);
  for (const ProbeResult& p : probes) {
    std::vector<std::string> needed = wrap(p.needed_by, kNeededByWidth);
    std::vector<std::string> detail = wrap(p.detail, detail_width);
    size_t lines = std::max(needed.size(), detail.size());
    for (size_t i = 0; i < lines; ++i) {
      std::string feature = i == 0 ? p.feature + (p.required ? "*" : "") : "";
      row(feature, i < needed.size() ? needed[i] : "", i == 0 ? (p.present ? "present" : "missing") : "",
          i < detail.size() ? detail[i] : "");
    }
  }
  out += "\n* required: dump and restore cannot work without it\n";
  return out;
}

std::string json_report(const std::vector<ProbeResult>& probes, bool possible) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const ProbeResult& p : probes) {
    rows.push_back({{"feature", p.feature},
                    {"needed_by", p.needed_by},
                    {"present", p.present},
                    {"detail", p.detail},
                    {"required", p.required}});
  }
  nlohmann::ordered_json report = {{"probes", rows}, {"dump_restore_possible", possible}};
  // Details quote kernel strings; replace rather than throw on bad UTF-8.
  return report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

Result<int> run_check_command(const Options& options) {
  std::vector<ProbeResult> probes = run_kernel_probes();
  std::vector<std::string> missing = missing_required(probes);
  std::string text = options.json ? json_report(probes, missing.empty())
                                  : fmt::format("{}\n{}\n", table(probes), verdict(missing));
  if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) return fail_errno("write to stdout");
  return missing.empty() ? 0 : 1;
}

}  // namespace ferry
