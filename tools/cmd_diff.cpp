// mmemu diff [--format text|json|html] [--out FILE] A B: what changed between two JSON dumps
// (tools/dump_diff.hpp). Exit status as diff(1): 0 no differences, 1 differences, 2 trouble
// (a usage error, a file that cannot be read or holds no such dump).
// --format html is the HTML page-table view (tools/html_view.hpp) of the two dumps, whose
// timeline highlights what changed between them.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "tools/commands.hpp"
#include "tools/dump_diff.hpp"
#include "tools/html_view.hpp"

namespace mmemu::cli {

namespace {

constexpr int kExitSame = 0, kExitDiffer = 1, kExitTrouble = 2;

struct DiffArgs {
  std::string format = "text";
  std::string out;
  std::string a, b;
};

int diff(const DiffArgs& args, bool to_file) {
  auto a = dump::load_dump(args.a);
  if (!a) {
    std::cerr << "mmemu diff: " << a.error() << '\n';
    return kExitTrouble;
  }
  auto b = dump::load_dump(args.b);
  if (!b) {
    std::cerr << "mmemu diff: " << b.error() << '\n';
    return kExitTrouble;
  }
  auto d = dump::diff_dumps(*a, *b);
  if (!d) {
    std::cerr << "mmemu diff: " << d.error() << '\n';
    return kExitTrouble;
  }
  std::string text;
  if (args.format == "json")
    text = dump::diff_json(*d).dump() + "\n";
  else if (args.format == "html")
    text = dump::html_view(std::vector<nlohmann::json>{a->run_shaped, b->run_shaped},
                           fmt::format("mmemu diff {} {}", a->where, b->where));
  else
    text = dump::diff_text(*d);
  if (to_file) {
    std::ofstream f(args.out, std::ios::binary | std::ios::trunc);
    if (!(f << text) || !f.flush()) {
      std::cerr << fmt::format("mmemu diff: cannot write --out {}\n", args.out);
      return kExitTrouble;
    }
  } else {
    std::cout << text << std::flush;
  }
  return d->empty() ? kExitSame : kExitDiffer;
}

}  // namespace

void add_diff_command(CLI::App& app, int& status) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* sub = app.add_subcommand(
      "diff",
      "compare two JSON page-table dumps (of mmemu run --dump-pgtables --format json or mmemu "
      "script --format json); FILE:N picks the N-th dump of a file");
  sub->add_option("--format", args->format, "text, json or html (the page-table view of both)")
      ->check(CLI::IsMember({"text", "json", "html"}))
      ->capture_default_str();
  sub->add_option("--out", args->out, "write the differences to FILE (default: standard output)");
  sub->add_option("A", args->a, "the first dump: FILE or FILE:N")->required();
  sub->add_option("B", args->b, "the second dump: FILE or FILE:N")->required();
  sub->callback([args, sub, &status] { status = diff(*args, sub->count("--out") > 0); });
}

}  // namespace mmemu::cli
