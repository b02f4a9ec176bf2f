// Philox-4x32-10 (Salmon et al., SC 2011), bit-identical to Random123 and triton.language.random.
#pragma once
#include <array>
#include <cstdint>

namespace posedenoise {

inline std::array<uint32_t, 4> philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                            uint32_t k0, uint32_t k1) {
  constexpr uint64_t ROUND_A = 0xD2511F53u, ROUND_B = 0xCD9E8D57u;
  constexpr uint32_t KEY_A = 0x9E3779B9u, KEY_B = 0xBB67AE85u;
  for (int i = 0; i < 10; ++i) {
    const uint64_t pb = ROUND_B * c2, pa = ROUND_A * c0;
    const uint32_t n0 = uint32_t(pb >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(pa >> 32) ^ c3 ^ k1;
    c1 = uint32_t(pb);
    c3 = uint32_t(pa);
    c0 = n0;
    c2 = n2;
    k0 += KEY_A;
    k1 += KEY_B;
  }
  return {c0, c1, c2, c3};
}

}  // namespace posedenoise
