#include "core/fs.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"

namespace dself {

StagedPath::StagedPath(std::filesystem::path final_path) : final_(std::move(final_path)) {
  // Keep the extension last so that tools that guess a format from the name still can.
  temporary_ = final_;
  temporary_.replace_filename(fmt::format(".{}.partial-{}{}", final_.stem().string(), getpid(),
                                          final_.extension().string()));
}

StagedPath::~StagedPath() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temporary_, ec);
  }
}

void StagedPath::commit() {
  std::error_code ec;
  std::filesystem::rename(temporary_, final_, ec);
  if (ec) {
    throw EnvironmentError(fmt::format("cannot move {} to {}: {}", temporary_.string(), final_.string(), ec.message()));
  }
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  StagedPath staged(path);
  {
    std::ofstream out(staged.temporary(), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      throw EnvironmentError(fmt::format("cannot write {}: check the directory exists, is writable and the disk has room",
                                         path.string()));
    }
  }
  staged.commit();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read {}: check that it exists and is readable", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace dself
