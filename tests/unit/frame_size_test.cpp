// port/frame_size.h: the mbuf size for an MTU and the af_packet framesz check.
#include "dataplane/port/frame_size.h"

#include <gtest/gtest.h>

namespace rondo::dp {
namespace {

constexpr uint32_t kHeadroom = 128;  // RTE_PKTMBUF_HEADROOM

FrameSizing sized(uint32_t mtu, std::vector<std::string> vdevs = {}) {
  FrameSizing fs;
  std::string err;
  std::vector<std::string> notes;
  EXPECT_TRUE(size_frames(mtu, vdevs, kHeadroom, &fs, &err, &notes)) << err;
  return fs;
}

TEST(FrameSize, StandardMtuKeepsDpdksDefaultMbuf) {
  // 2048 + 128: RTE_MBUF_DEFAULT_BUF_SIZE, what rondo always used.
  EXPECT_EQ(sized(1500).data_room, 2176u);
  EXPECT_EQ(sized(1500).frame, 1518u);
  EXPECT_EQ(sized(1500, {"net_af_packet0,iface=dp0"}).data_room, 2176u);
}

TEST(FrameSize, JumboMbufHoldsATaggedFrameAfterTheHeadroom) {
  const FrameSizing fs = sized(9000);
  EXPECT_EQ(fs.frame, 9000u + 14 + 4);
  EXPECT_GE(fs.data_room, kHeadroom + fs.frame);
  EXPECT_EQ(fs.data_room % 64, 0u);
}

TEST(FrameSize, AfPacketRxNeedsFramesz) {
  // net_af_packet's RX queue setup wants framesz - 32 bytes after the headroom.
  const FrameSizing fs = sized(1500, {"net_af_packet0,iface=dp0,framesz=9216,blocksz=36864"});
  EXPECT_GE(fs.data_room, kHeadroom + 9216 - 32);
}

TEST(FrameSize, AfPacketFramesTooSmallForTheMtuAreRefused) {
  FrameSizing fs;
  std::string err;
  std::vector<std::string> notes;
  EXPECT_FALSE(size_frames(9000, {"net_af_packet0,iface=dp0"}, kHeadroom, &fs, &err, &notes));
  EXPECT_NE(err.find("net_af_packet0: framesz=2048"), std::string::npos) << err;
  // The framesz it names holds a 9014-byte frame at offset 66 and is a multiple of 16.
  EXPECT_NE(err.find("framesz=9088"), std::string::npos) << err;
  EXPECT_GE(af_packet_max_frame(9088), 9014u);
  EXPECT_LT(af_packet_max_frame(9072), 9014u);
  // Exactly enough is enough.
  EXPECT_TRUE(size_frames(9000, {"net_af_packet0,iface=dp0,framesz=9088"}, kHeadroom, &fs, &err,
                          &notes));
}

// Tagged frames leave with their tag in the bytes (mtu + 18) while the kernel hands them in
// untagged (mtu + 14, the tag as metadata): every framesz the RX check takes sends a tagged
// frame of that MTU whole, and the default 2048 does at the default MTU.
TEST(FrameSize, AfPacketTxHoldsATaggedFrameWheneverRxTakesTheMtu) {
  EXPECT_EQ(af_packet_tx_max_frame(2048), 2016u);
  EXPECT_GE(af_packet_tx_max_frame(2048), max_frame(1500));
  for (uint32_t mtu : {576u, 1500u, 1982u, 4000u, 9000u}) {
    const uint32_t need = (mtu + 14 + 66 + 15) / 16 * 16;  // the framesz the RX check names
    ASSERT_GE(af_packet_max_frame(need), mtu + 14) << mtu;
    EXPECT_GE(af_packet_tx_max_frame(need), max_frame(mtu)) << mtu;
    EXPECT_GE(af_packet_tx_max_frame(need) - max_frame(mtu), 30u) << mtu;  // 66 - 32 - 4, rounding
  }
  // The largest MTU the default framesz takes: 2048 - 66 - 14 = 1968, and its tagged frame.
  FrameSizing fs;
  std::string err;
  std::vector<std::string> notes;
  EXPECT_TRUE(size_frames(1968, {"net_af_packet0,iface=dp0"}, kHeadroom, &fs, &err, &notes)) << err;
  EXPECT_LE(max_frame(1968), af_packet_tx_max_frame(2048));
  EXPECT_FALSE(size_frames(1969, {"net_af_packet0,iface=dp0"}, kHeadroom, &fs, &err, &notes));
}

TEST(FrameSize, FrameszIsReadFromTheVdevArguments) {
  EXPECT_EQ(af_packet_framesz("net_af_packet0,iface=dp0"), 2048u);
  EXPECT_EQ(af_packet_framesz("net_af_packet1,framesz=4096,iface=x"), 4096u);
  EXPECT_EQ(af_packet_framesz("eth_af_packet0,iface=x,framesz=9216"), 9216u);
  EXPECT_EQ(af_packet_framesz("net_af_xdp0,iface=x"), std::nullopt);
  EXPECT_EQ(af_packet_framesz("net_af_packet0,framesz=9k"), std::nullopt);
  // A key that only ends like framesz is another key.
  EXPECT_EQ(af_packet_framesz("net_af_packet0,xframesz=4096"), 2048u);
}

TEST(FrameSize, AfXdpAboveItsFrameIsNamed) {
  FrameSizing fs;
  std::string err;
  std::vector<std::string> notes;
  EXPECT_TRUE(size_frames(9000, {"net_af_xdp0,iface=x"}, kHeadroom, &fs, &err, &notes));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("multi-buffer"), std::string::npos);
  notes.clear();
  EXPECT_TRUE(size_frames(1500, {"net_af_xdp0,iface=x"}, kHeadroom, &fs, &err, &notes));
  EXPECT_TRUE(notes.empty());
}

}  // namespace
}  // namespace rondo::dp
