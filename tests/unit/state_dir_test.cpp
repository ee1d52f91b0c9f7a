// The state directory's hash secret: made once (mode 0600), read back on every later start,
// and refused with a message naming the file when it is damaged or others can read it; the flow
// directory (--flow-dir) refused when another user could have planted what it adopts.
#include "dataplane/runtime/state_dir.h"
#include "dataplane/runtime/flow_dir.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/unit/socket_test_util.h"

namespace rondo::dp {
namespace {

// A fresh directory (removed afterwards) and the key file's path in it.
struct TempDir : rondo::testing::TempDir {
  std::string key() const { return path() + "/hash.key"; }
};

void write_file(const std::string& path, const std::string& bytes, mode_t mode) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

// The StateDirError message of loading dir's key ("" if it loaded).
std::string refusal(const std::string& dir) {
  try {
    load_or_create_hash_key(dir);
  } catch (const StateDirError& e) {
    return e.what();
  }
  return "";
}

TEST(StateDir, FirstStartCreatesTheKeyPrivateSecondStartReadsTheSame) {
  TempDir d;
  bool created = false;
  const HashKey first = load_or_create_hash_key(d.path(), &created);
  EXPECT_TRUE(created);
  struct stat st{};
  ASSERT_EQ(::stat(d.key().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 16);
  EXPECT_NE(first, HashKey{});
  // Nothing else is left behind (no temporary file).
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);

  // A restarted process finds the same secret, so the same buckets for its flows.
  const HashKey again = load_or_create_hash_key(d.path(), &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(again, first);
}

// A clean stop keeps where each worker's port search stood; the next start takes it once.
TEST(StateDir, PortOrderRoundTripsAndIsTakenOnce) {
  TempDir d;
  EXPECT_FALSE(take_port_order(d.path()).has_value());
  PortOrder o{1024, 65535, {}};
  for (uint32_t w = 0; w < 2; ++w) {
    auto& c = o.workers.emplace_back();
    for (uint32_t i = 0; i < c.size(); ++i) c[i] = w * 1000 + i * 7;
  }
  std::string err;
  ASSERT_TRUE(save_port_order(d.path(), o, &err)) << err;
  auto back = take_port_order(d.path());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->lo, 1024);
  EXPECT_EQ(back->hi, 65535);
  EXPECT_EQ(back->workers, o.workers);
  EXPECT_FALSE(take_port_order(d.path()).has_value());  // gone: it described one process
  write_file(d.path() + "/ports.order", "rondo-ports/1 1024 65535 2\n1 2 3\n", 0600);
  EXPECT_FALSE(take_port_order(d.path()).has_value());  // truncated: ignored
}

TEST(StateDir, TwoStateDirsGetTwoSecrets) {
  TempDir a, b;
  EXPECT_NE(load_or_create_hash_key(a.path()), load_or_create_hash_key(b.path()));
}

TEST(StateDir, MissingDirectoryIsCreatedPrivate) {
  TempDir d;
  const std::string sub = d.path() + "/state";
  bool created = false;
  load_or_create_hash_key(sub, &created);
  EXPECT_TRUE(created);
  struct stat st{};
  ASSERT_EQ(::stat(sub.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST(StateDir, KeyFileBytesAreTheKey) {
  TempDir d;
  std::string bytes;
  for (int i = 0; i < 16; i++) bytes.push_back(static_cast<char>(i));
  write_file(d.key(), bytes, 0600);
  const HashKey k = load_or_create_hash_key(d.path());
  EXPECT_EQ(k, (HashKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}));
}

TEST(StateDir, ShortOrLongFileIsRefusedAndLeftAlone) {
  for (size_t n : {0u, 15u, 17u, 32u}) {
    TempDir d;
    write_file(d.key(), std::string(n, 'x'), 0600);
    const std::string why = refusal(d.path());
    EXPECT_NE(why.find(d.key()), std::string::npos) << why;
    EXPECT_NE(why.find(std::to_string(n) + " bytes, a hash key is exactly 16"), std::string::npos)
        << why;
    EXPECT_EQ(std::filesystem::file_size(d.key()), n);  // not replaced
  }
}

TEST(StateDir, AllZeroFileIsRefused) {
  TempDir d;
  write_file(d.key(), std::string(16, '\0'), 0600);
  EXPECT_NE(refusal(d.path()).find("all zero"), std::string::npos);
}

TEST(StateDir, FileOthersCanReadIsRefused) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    TempDir d;
    write_file(d.key(), std::string(16, 'k'), mode);
    const std::string why = refusal(d.path());
    EXPECT_NE(why.find(d.key()), std::string::npos) << why;
    EXPECT_NE(why.find("lets group or others at the flow-hash secret"), std::string::npos) << why;
    EXPECT_NE(why.find("chmod 600"), std::string::npos) << why;
  }
  // The owner's own bits are fine (0400: read-only).
  TempDir ro;
  write_file(ro.key(), std::string(16, 'k'), 0400);
  EXPECT_EQ(refusal(ro.path()), "");
}

TEST(StateDir, SymlinkOrDirectoryInsteadOfAFileIsRefused) {
  TempDir d;
  TempDir elsewhere;
  write_file(elsewhere.key(), std::string(16, 'k'), 0600);
  ASSERT_EQ(::symlink(elsewhere.key().c_str(), d.key().c_str()), 0);
  EXPECT_NE(refusal(d.path()).find("symbolic link"), std::string::npos);

  TempDir d2;
  ASSERT_EQ(::mkdir(d2.key().c_str(), 0700), 0);
  EXPECT_NE(refusal(d2.path()).find("not a regular file"), std::string::npos);
}

TEST(StateDir, FileOwnedBySomeoneElseOrAFifoIsRefused) {
  TempDir d;
  write_file(d.key(), std::string(16, 'k'), 0600);
  if (::geteuid() == 0) {  // only root can give a file away
    ASSERT_EQ(::chown(d.key().c_str(), 65534, 65534), 0);
    const std::string why = refusal(d.path());
    EXPECT_NE(why.find("owned by uid 65534"), std::string::npos) << why;
  }
  TempDir f;
  ASSERT_EQ(::mkfifo(f.key().c_str(), 0600), 0);
  EXPECT_NE(refusal(f.path()).find("not a regular file"), std::string::npos);  // and no hang
}

TEST(StateDir, StateDirThatIsAFileIsRefused) {
  TempDir d;
  const std::string f = d.path() + "/file";
  write_file(f, "x", 0600);
  EXPECT_NE(refusal(f).find("is not a directory"), std::string::npos);
}

// ---- The flow directory (--flow-dir, runtime/flow_dir.h): what is in it is adopted at
// start, so only the dataplane's user may write it.


std::string flow_dir_refusal(const std::string& dir) {
  std::string err, warning;
  return prepare_flow_dir(dir, &err, &warning) ? "" : err;
}

TEST(FlowDir, CreatedPrivateThenAccepted) {
  TempDir t;
  const std::string dir = t.path() + "/flows";
  EXPECT_EQ(flow_dir_refusal(dir), "");
  struct stat st{};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(flow_dir_refusal(dir), "");  // exists: accepted as it is
}

TEST(FlowDir, RefusesWhatOthersCouldHavePlanted) {
  TempDir t;
  const std::string dir = t.path() + "/flows";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0770), 0);
  EXPECT_EQ(flow_dir_refusal(dir),
            dir + ": mode 0770 lets group or others write it; its files are adopted at start (chmod 700 it)");
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  // A symbolic link under the name is not followed.
  const std::string link = t.path() + "/link";
  ASSERT_EQ(::symlink(dir.c_str(), link.c_str()), 0);
  EXPECT_EQ(flow_dir_refusal(link), link + " is not a directory (a symbolic link)");
  // A file is not a directory.
  write_file(t.path() + "/file", "x", 0600);
  EXPECT_EQ(flow_dir_refusal(t.path() + "/file"), t.path() + "/file is not a directory");
  // Another user's directory (only root can make one to test with).
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
    EXPECT_NE(flow_dir_refusal(dir).find("owned by uid 65534, not by this process"), std::string::npos);
  }
}

TEST(FlowDir, WorkerCountAndLeftovers) {
  TempDir t;
  std::string err;
  EXPECT_FALSE(read_worker_count(t.path()));
  ASSERT_TRUE(write_worker_count(t.path(), 3, &err)) << err;
  EXPECT_EQ(read_worker_count(t.path()), 3u);
  write_file(t.path() + "/workers", "0\n", 0600);
  EXPECT_FALSE(read_worker_count(t.path())) << "0 workers is no count";
  // Three workers' files; a process with one removes those of workers 1 and 2, not 0's.
  for (unsigned i = 0; i < 3; ++i) {
    write_file(flow_file(t.path(), i), "f", 0600);
    write_file(quarantine_file(t.path(), i), "q", 0600);
  }
  EXPECT_EQ(remove_worker_files(t.path(), 1), 4u);
  EXPECT_TRUE(std::filesystem::exists(flow_file(t.path(), 0)));
  EXPECT_TRUE(std::filesystem::exists(quarantine_file(t.path(), 0)));
  EXPECT_FALSE(std::filesystem::exists(flow_file(t.path(), 1)));
  EXPECT_FALSE(std::filesystem::exists(quarantine_file(t.path(), 2)));
  EXPECT_EQ(remove_worker_files(t.path(), 1), 0u);
}

// The v6 files (flows6.<i>, quarantine6.<i>) go with the rest, also for a worker that has
// only those (a gap in the v4 files does not stop the walk).
TEST(FlowDir, RemovesTheV6FilesOfWorkersPastTheCount) {
  TempDir t;
  EXPECT_EQ(flow6_file(t.path(), 2), t.path() + "/flows6.2");
  EXPECT_EQ(quarantine6_file(t.path(), 2), t.path() + "/quarantine6.2");
  for (unsigned i = 0; i < 3; ++i) {
    write_file(flow6_file(t.path(), i), "f6", 0600);
    write_file(quarantine6_file(t.path(), i), "q6", 0600);
  }
  write_file(flow_file(t.path(), 0), "f", 0600);
  write_file(flow_file(t.path(), 2), "f", 0600);
  EXPECT_EQ(remove_worker_files(t.path(), 1), 5u);
  EXPECT_TRUE(std::filesystem::exists(flow6_file(t.path(), 0)));
  EXPECT_TRUE(std::filesystem::exists(quarantine6_file(t.path(), 0)));
  EXPECT_TRUE(std::filesystem::exists(flow_file(t.path(), 0)));
  for (unsigned i = 1; i < 3; ++i) {
    EXPECT_FALSE(std::filesystem::exists(flow6_file(t.path(), i))) << i;
    EXPECT_FALSE(std::filesystem::exists(quarantine6_file(t.path(), i))) << i;
  }
  EXPECT_FALSE(std::filesystem::exists(flow_file(t.path(), 2)));
}

}  // namespace
}  // namespace rondo::dp
