// dself eval say: lip sync by re-detection, self-reenactment, the motion against held-out frames
// (and the truth of a sample person), the fallback voice's intelligibility.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "say/say.h"

namespace dself {

void add_eval_say_command(CLI::App& eval, const GlobalOptions& globals) {
  struct Options {
    std::filesystem::path truth;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = eval.add_subcommand(
      "say", "Lip sync (re-detection), self-reenactment PSNR/SSIM, motion and voice on held-out data");
  command->add_option("--truth", options->truth,
                      "A sample person's --out directory: also compare the motion with the true landmarks");
  command->add_flag("--json", options->json, "Print the JSON document only (format: docs/FORMATS.md)");
  command->footer("Writes each part's figures to <avatar>/models/<voice|motion|render>/metrics.json.");
  command->callback([options, &globals] {
    say::SayOptions say_options;
    say_options.avatar = globals.avatar;
    nlohmann::json result = say::evaluate(say_options, options->truth);
    if (options->json) {
      std::printf("%s\n", result.dump(2).c_str());
      return;
    }
    auto number = [](const nlohmann::json& part, const char* key) {
      return part.contains(key) ? part[key].get<double>() : -1.0;
    };
    const auto& lips = result["lip_sync"];
    std::printf("lip sync      face found %.1f%%, mouth error %.2f%% IOD, opening correlation %.3f (%d frames)\n",
                100 * number(lips, "face_found_share"), number(lips, "mouth_error_iod_pct"),
                number(lips, "opening_correlation"), static_cast<int>(number(lips, "frames")));
    const auto& re = result["reenactment"].value("face", nlohmann::json::object());
    std::printf("reenactment   face PSNR %.2f dB, SSIM %.3f\n", number(re, "psnr_db"), number(re, "ssim"));
    std::printf("motion / voice: see --json (also kept in models/*/metrics.json)\n");
  });
}

}  // namespace dself
