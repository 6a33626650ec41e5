// Mixture weights: PocketSphinx's quantised sendump read back, and SphinxTrain's S3 binary
// mixture_weights written and read. Debian's en-us model ships only the sendump, while bw and
// map_adapt need mixture_weights (sphinxtrain's own converter, sendump.py, is Python 2).
// ref: pocketsphinx 5prealpha src/libpocketsphinx/ptm_mgau.c read_sendump() (header strings, then
// rows = densities and columns = senones, one byte per weight, stream by stream);
// sphinxtrain python/cmusphinx/sendump.py (w = 1.0001^-(q << mixw_shift), mixw_shift 10);
// sphinxbase src/libsphinxbase/util/bio.c (the "s3" header, byte-order magic 0x11223344,
// bio_fwrite_3d: three int32 dimensions, an int32 element count, then the float32 data).
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"
#include "stt/stt.h"

namespace dself::stt {
namespace {

constexpr uint32_t kByteOrderMagic = 0x11223344;

uint32_t swap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

class Reader {
 public:
  Reader(const std::string& bytes, const std::filesystem::path& path) : bytes_(bytes), path_(path) {}
  uint32_t u32() {
    need(4);
    uint32_t v;
    std::memcpy(&v, bytes_.data() + at_, 4);
    at_ += 4;
    return swap_ ? swap32(v) : v;
  }
  std::string take(size_t n) {
    need(n);
    std::string s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }
  void set_swap(bool swap) { swap_ = swap; }
  size_t at() const { return at_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(fmt::format("{} is not a {} (at byte {})", path_.string(), what, at_));
  }

 private:
  void need(size_t n) const {
    if (at_ + n > bytes_.size()) {
      throw InputError(fmt::format("{} ends early (byte {} of {}): the file is cut short", path_.string(),
                                   bytes_.size(), at_ + n));
    }
  }
  const std::string& bytes_;
  const std::filesystem::path& path_;
  size_t at_ = 0;
  bool swap_ = false;
};

void normalize(MixtureWeights& m) {
  for (size_t row = 0; row + m.density_count <= m.weights.size(); row += m.density_count) {
    double sum = 0;
    for (int d = 0; d < m.density_count; ++d) sum += m.weights[row + d];
    if (sum <= 0) continue;
    for (int d = 0; d < m.density_count; ++d) m.weights[row + d] = static_cast<float>(m.weights[row + d] / sum);
  }
}

}  // namespace

MixtureWeights read_sendump(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  Reader in(bytes, path);
  // The first string's length tells the byte order (pocketsphinx: "this is extremely bogus").
  uint32_t n = in.u32();
  if (n < 1 || n > 999) {
    in.set_swap(true);
    n = swap32(n);
    if (n < 1 || n > 999) in.fail("PocketSphinx sendump");
  }
  in.take(n);
  int feature_count = 1, shift = 10, cluster_count = 0;
  while ((n = in.u32()) != 0) {
    if (n > 4096) in.fail("PocketSphinx sendump (header string too long)");
    std::string line = in.take(n);
    line = line.substr(0, line.find('\0'));
    auto value_of = [&](const char* key) {
      return line.rfind(key, 0) == 0 ? std::atoi(line.c_str() + std::strlen(key)) : -1;
    };
    if (int v = value_of("feature_count "); v >= 0) feature_count = v;
    if (int v = value_of("mixw_shift "); v >= 0) shift = v;
    if (int v = value_of("cluster_count "); v >= 0) cluster_count = v;
  }
  if (cluster_count != 0) in.fail("PocketSphinx sendump without clusters (clustered dumps are not supported)");
  const int densities = static_cast<int>(in.u32());
  const int senones = static_cast<int>(in.u32());
  if (densities <= 0 || densities > 4096 || senones <= 0 || senones > 1'000'000 || feature_count <= 0 ||
      feature_count > 8) {
    in.fail(fmt::format("PocketSphinx sendump ({} densities, {} senones, {} streams)", densities, senones,
                        feature_count));
  }
  MixtureWeights m;
  m.senone_count = senones;
  m.feature_count = feature_count;
  m.density_count = densities;
  m.weights.assign(static_cast<size_t>(senones) * feature_count * densities, 0);
  const double log_base = std::log(1.0001);
  for (int f = 0; f < feature_count; ++f) {
    for (int d = 0; d < densities; ++d) {
      const std::string row = in.take(senones);
      for (int s = 0; s < senones; ++s) {
        const int q = static_cast<unsigned char>(row[s]) << shift;
        m.weights[(static_cast<size_t>(s) * feature_count + f) * densities + d] =
            static_cast<float>(std::exp(-q * log_base));
      }
    }
  }
  // Quantisation leaves each mixture summing to about 1; bw and map_adapt expect it exact.
  normalize(m);
  return m;
}

void write_mixture_weights(const std::filesystem::path& path, const MixtureWeights& m) {
  static_assert(std::endian::native == std::endian::little, "S3 files are written in the host's order");
  std::string out = "s3\nversion 1.0\nendhdr\n";
  auto put = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  put(kByteOrderMagic);
  put(static_cast<uint32_t>(m.senone_count));
  put(static_cast<uint32_t>(m.feature_count));
  put(static_cast<uint32_t>(m.density_count));
  put(static_cast<uint32_t>(m.weights.size()));
  out.append(reinterpret_cast<const char*>(m.weights.data()), m.weights.size() * sizeof(float));
  write_file_atomic(path, out);
}

MixtureWeights read_mixture_weights(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  size_t end = bytes.find("endhdr\n");
  if (bytes.rfind("s3\n", 0) != 0 || end == std::string::npos) {
    throw InputError(fmt::format("{} is not a SphinxTrain S3 file (no s3 header)", path.string()));
  }
  const bool checksum = bytes.substr(0, end).find("chksum0 yes") != std::string::npos;
  Reader in(bytes, path);
  in.take(end + 7);
  const uint32_t magic = in.u32();
  if (magic != kByteOrderMagic) {
    if (swap32(magic) != kByteOrderMagic) in.fail("SphinxTrain S3 file (byte-order magic)");
    in.set_swap(true);
  }
  MixtureWeights m;
  m.senone_count = static_cast<int>(in.u32());
  m.feature_count = static_cast<int>(in.u32());
  m.density_count = static_cast<int>(in.u32());
  const uint32_t count = in.u32();
  if (static_cast<uint64_t>(m.senone_count) * m.feature_count * m.density_count != count ||
      bytes.size() < in.at() + count * 4ull + (checksum ? 4 : 0)) {
    in.fail("mixture_weights file (its dimensions do not match its size)");
  }
  m.weights.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t v = in.u32();
    std::memcpy(&m.weights[i], &v, 4);
  }
  normalize(m);
  return m;
}

}  // namespace dself::stt
