// Tests of src/store: journal and fragment names (SPEC 3.2/3.3), the data directory lock.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <rapidjson/document.h>

#include "store/lock.h"
#include "store/naming.h"

using namespace flow;

namespace {
std::string Encoded(const char* json) {
  rapidjson::Document d;
  d.Parse(json);
  std::string out;
  REQUIRE(store::EncodePartitionValue(d, &out));
  return out;
}
}  // namespace

TEST_CASE("partition values are encoded as SPEC 3.2 says") {
  CHECK(Encoded("42") == "42");
  CHECK(Encoded("-7") == "-7");
  CHECK(Encoded("18446744073709551615") == "18446744073709551615");
  CHECK(Encoded("true") == "true");
  CHECK(Encoded("false") == "false");
  CHECK(Encoded(R"("EU West")") == "EU%20West");
  CHECK(Encoded(R"("a-z_A.Z~09$&+:=@")") == "a-z_A.Z~09$&+:=@");
  CHECK(Encoded(R"("a/b%c?é")") == "a%2Fb%25c%3F%C3%A9");
  rapidjson::Document d;
  std::string out;
  for (const char* bad : {"1.5", "null", "[]", "{}"}) {
    d.Parse(bad);
    CHECK_FALSE(store::EncodePartitionValue(d, &out));
  }
  std::string decoded;
  CHECK(store::DecodePartitionString("a%2Fb%25c%3F%C3%A9", &decoded));
  CHECK(decoded == "a/b%c?é");
  CHECK_FALSE(store::DecodePartitionString("bad%2", &decoded));
  CHECK_FALSE(store::DecodePartitionString("bad%zz", &decoded));
}

TEST_CASE("journal names sort partition fields by name") {
  rapidjson::Document region, shard;
  region.Parse(R"("EU West")");
  shard.Parse("3");
  std::string name;
  REQUIRE(store::JournalName("acme/orders", {{"shard", &shard}, {"region", &region}}, &name));
  CHECK(name == "acme/orders/region=EU%20West/shard=3/pivot=00");
  REQUIRE(store::JournalName("acme/orders", {}, &name));
  CHECK(name == "acme/orders/pivot=00");
  rapidjson::Document bad;
  bad.Parse("1.5");
  CHECK_FALSE(store::JournalName("acme/orders", {{"x", &bad}}, &name));
}

TEST_CASE("fragment paths follow the hive layout") {
  std::time_t t = 1763683200 + 3 * 3600 + 59;  // 2025-11-21 03:00:59 UTC
  CHECK(store::FragmentPath("acme/orders/pivot=00", t, 0, 0x1f4, "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                            store::Codec::kGzip) ==
        "acme/orders/pivot=00/utc_date=2025-11-21/utc_hour=03/"
        "0000000000000000-00000000000001f4-da39a3ee5e6b4b0d3255bfef95601890afd80709.gz");
  CHECK(store::FragmentPath("j", t, 1, 2, "x", store::Codec::kZstd).ends_with("-x.zst"));
  CHECK(store::FragmentPath("j", t, 1, 2, "x", store::Codec::kNone).ends_with("-x.raw"));
}

TEST_CASE("a data directory is owned by one process at a time") {
  auto dir = std::filesystem::temp_directory_path() / ("flowctl-lock-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto first = store::DataDirLock::Acquire(dir.string());
    REQUIRE(first.ok());
    // Another process cannot take it; the message names the directory and our pid.
    pid_t child = ::fork();
    if (child == 0) {
      auto second = store::DataDirLock::Acquire(dir.string());
      bool ok = !second.ok() && second.error().code == Error::Code::kEnvironment &&
                second.error().message.find("is in use by another flowctl process (pid " +
                                            std::to_string(::getppid()) + ")") != std::string::npos;
      ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  // Released when the owner goes away.
  auto again = store::DataDirLock::Acquire(dir.string());
  CHECK(again.ok());
  std::filesystem::remove_all(dir);
}
