// Access log: W3C and JSON lines with hostile values, the W3C header, batching, concurrency and reopen.
#include "proxy/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/src.hpp>  // header-only Boost.JSON, used here to prove every JSON line parses

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace easedge::proxy {
namespace {

using namespace std::chrono_literals;

// 2024-01-15 10:23:45.678 UTC
const auto log_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1705314225678));

AccessLogRecord sample() {
  AccessLogRecord r;
  r.time = log_time;
  r.server_ip = "10.0.0.1";
  r.server_port = 443;
  r.client_ip = "192.0.2.7";
  r.client_port = 51234;
  r.method = "POST";
  r.uri_stem = "/Microsoft-Server-ActiveSync";
  r.uri_query = "Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone";
  r.user = "alice@corp.example.test";
  r.cert_sha256 = "ab12";
  r.user_agent = "Apple-iPhone13C2/2006.100";
  r.eas_command = "Sync";
  r.device_id = "ABC123";
  r.device_type = "iPhone";
  r.status = 200;
  r.substatus = 0;
  r.win32_status = 0;
  r.bytes_in = 512;
  r.bytes_out = 1024;
  r.duration = 15432us;
  r.upstream_status = 200;
  r.request_id = "5f0c3a9e00000001";
  return r;
}

std::string w3c(const AccessLogRecord& r) {
  std::string out;
  format_w3c(r, out);
  return out;
}

std::string json(const AccessLogRecord& r) {
  std::string out;
  format_json(r, out);
  return out;
}

boost::json::object parse_json_line(const std::string& line) {
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  boost::system::error_code error;
  auto value = boost::json::parse(std::string_view(line).substr(0, line.size() - 1), error);
  EXPECT_FALSE(error) << error.message() << ": " << line;
  return error ? boost::json::object{} : value.as_object();
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string field; in >> field;) fields.push_back(field);
  return fields;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(AccessLogW3c, Header) {
  std::string out;
  format_w3c_header(log_time, out);
  EXPECT_EQ(out,
            "#Software: easedge\n#Version: 1.0\n#Date: 2024-01-15 10:23:45\n"
            "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
            "sc-status sc-substatus sc-win32-status time-taken sc(X-Request-Id)\n");
}

TEST(AccessLogW3c, Line) {
  EXPECT_EQ(w3c(sample()),
            "2024-01-15 10:23:45 10.0.0.1 POST /Microsoft-Server-ActiveSync "
            "Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone 443 alice@corp.example.test 192.0.2.7 "
            "Apple-iPhone13C2/2006.100 200 0 0 15 5f0c3a9e00000001\n");
  EXPECT_EQ(split(w3c(sample())).size(), split(std::string(w3c_fields)).size());
}

TEST(AccessLogW3c, EmptyFieldsAndSpaces) {
  AccessLogRecord r = sample();
  r.uri_query = "";
  r.user = "";
  r.user_agent = "Mozilla/5.0 (iPhone; CPU OS 17)";
  r.status = 403;
  r.substatus = 7;
  r.request_id = "";
  std::string line = w3c(r);
  auto fields = split(line);
  ASSERT_EQ(fields.size(), 15u) << line;
  EXPECT_EQ(fields[5], "-");
  EXPECT_EQ(fields[7], "-");
  EXPECT_EQ(fields[9], "Mozilla/5.0+(iPhone;+CPU+OS+17)");
  EXPECT_EQ(fields[10], "403");
  EXPECT_EQ(fields[11], "7");
  EXPECT_EQ(fields[14], "-");
}

TEST(AccessLogW3c, HostileValuesStayOnOneLineWithAllFields) {
  AccessLogRecord r = sample();
  r.user = "alice\r\n2024-01-01 00:00:00 forged line";
  static constexpr char agent[] = "ua\twith\0nul\x7f and \x1b[31m";
  r.user_agent = std::string_view(agent, sizeof agent - 1);
  r.uri_query = "a b\nc";
  r.method = "";
  std::string line = w3c(r);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line.find('\t'), std::string::npos);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\0'), std::string::npos);
  auto fields = split(line);
  ASSERT_EQ(fields.size(), 15u) << line;
  EXPECT_EQ(fields[3], "-");
  EXPECT_EQ(fields[5], "a+b%0Ac");
  EXPECT_EQ(fields[7], "alice%0D%0A2024-01-01+00:00:00+forged+line");
  EXPECT_EQ(fields[9], "ua%09with%00nul%7F+and+%1B[31m");
}

TEST(AccessLogW3c, Utf8KeptInvalidBytesEscaped) {
  AccessLogRecord r = sample();
  r.user = "j\xc3\xbcrgen";             // valid: kept
  r.user_agent = "bad\xc3(\xff\xed\xa0\x80";  // truncated sequence, 0xff, a surrogate: escaped
  auto fields = split(w3c(r));
  ASSERT_EQ(fields.size(), 15u);
  EXPECT_EQ(fields[7], "j\xc3\xbcrgen");
  EXPECT_EQ(fields[9], "bad%C3(%FF%ED%A0%80");
}

TEST(AccessLogW3c, TimeTakenInMilliseconds) {
  AccessLogRecord r = sample();
  r.duration = 3'540'123'456us;
  EXPECT_EQ(split(w3c(r))[13], "3540123");
}

TEST(AccessLogJson, AllFields) {
  std::string line = json(sample());
  auto o = parse_json_line(line);
  EXPECT_EQ(o["ts"].as_string(), "2024-01-15T10:23:45.678Z");
  EXPECT_EQ(o["client"].as_string(), "192.0.2.7");
  EXPECT_EQ(o["client_port"].as_int64(), 51234);
  EXPECT_EQ(o["server"].as_string(), "10.0.0.1");
  EXPECT_EQ(o["server_port"].as_int64(), 443);
  EXPECT_EQ(o["user"].as_string(), "alice@corp.example.test");
  EXPECT_EQ(o["cert_sha256"].as_string(), "ab12");
  EXPECT_EQ(o["method"].as_string(), "POST");
  EXPECT_EQ(o["uri"].as_string(), "/Microsoft-Server-ActiveSync");
  EXPECT_EQ(o["query"].as_string(), "Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone");
  EXPECT_EQ(o["cmd"].as_string(), "Sync");
  EXPECT_EQ(o["device_id"].as_string(), "ABC123");
  EXPECT_EQ(o["device_type"].as_string(), "iPhone");
  EXPECT_EQ(o["user_agent"].as_string(), "Apple-iPhone13C2/2006.100");
  EXPECT_EQ(o["status"].as_int64(), 200);
  EXPECT_EQ(o["substatus"].as_int64(), 0);
  EXPECT_EQ(o["win32_status"].as_int64(), 0);
  EXPECT_EQ(o["bytes_in"].as_int64(), 512);
  EXPECT_EQ(o["bytes_out"].as_int64(), 1024);
  EXPECT_DOUBLE_EQ(o["duration_ms"].as_double(), 15.432);
  EXPECT_EQ(o["upstream_status"].as_int64(), 200);
  EXPECT_EQ(o["request_id"].as_string(), "5f0c3a9e00000001");
  EXPECT_EQ(o.size(), 22u);
}

TEST(AccessLogJson, NoUpstreamAndSubMillisecond) {
  AccessLogRecord r = sample();
  r.upstream_status = 0;
  r.status = 403;
  r.duration = 7us;
  r.bytes_in = 18446744073709551615ull;
  auto o = parse_json_line(json(r));
  EXPECT_EQ(o["upstream_status"].as_int64(), 0);
  EXPECT_DOUBLE_EQ(o["duration_ms"].as_double(), 0.007);
  EXPECT_EQ(o["bytes_in"].as_uint64(), 18446744073709551615ull);
}

TEST(AccessLogJson, HostileStringsRoundTrip) {
  std::string every_control;
  for (int c = 0; c < 0x20; ++c) every_control += static_cast<char>(c);
  every_control += "\x7f\"\\/";
  AccessLogRecord r = sample();
  r.user = every_control;
  r.user_agent = "\"},{\"status\":200,\"x\":\"";
  r.device_id = "</script>\u2028";
  std::string line = json(r);
  auto o = parse_json_line(line);
  EXPECT_EQ(o["user"].as_string(), every_control);
  EXPECT_EQ(o["user_agent"].as_string(), "\"},{\"status\":200,\"x\":\"");
  EXPECT_EQ(o["device_id"].as_string(), "</script>\u2028");
  EXPECT_EQ(o["status"].as_int64(), 200);
  for (int c = 0; c < 0x20; ++c) EXPECT_EQ(line.find(static_cast<char>(c)), c == '\n' ? line.size() - 1 : std::string::npos);
  EXPECT_NE(line.find("\\u0000"), std::string::npos);
  EXPECT_NE(line.find("\\u001F"), std::string::npos);
  EXPECT_NE(line.find("\\n"), std::string::npos);
}

TEST(AccessLogJson, InvalidUtf8BecomesReplacementCharacter) {
  AccessLogRecord r = sample();
  r.user = "ok\xc3\xa9 bad\xc3 \xff \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xf0\x9f\x98\x80";
  auto o = parse_json_line(json(r));  // Boost.JSON rejects invalid UTF-8, so this parsing is the check
  EXPECT_EQ(o["user"].as_string(),
            "ok\xc3\xa9 bad\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80");
}

class AccessLogWriterTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("easedge-access-log-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path path() const { return dir_ / "access.log"; }

  std::filesystem::path dir_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(AccessLogWriterTest, W3cHeaderOnceThenLines) {
  {
    AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c);
    writer.write(sample());
  }
  {
    AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c);  // appends, no second header
    writer.write(sample());
  }
  auto lines = lines_of(read_file(path()));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "#Software: easedge");
  EXPECT_EQ(lines[1], "#Version: 1.0");
  EXPECT_EQ(lines[2].rfind("#Date: ", 0), 0u);
  EXPECT_EQ(lines[3], "#Fields: " + std::string(w3c_fields));
  EXPECT_EQ(lines[4] + "\n", w3c(sample()));
  EXPECT_EQ(lines[5], lines[4]);
}

TEST_F(AccessLogWriterTest, UnusedWriterWritesNothing) {
  { AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c); }
  EXPECT_TRUE(std::filesystem::exists(path()));
  EXPECT_EQ(read_file(path()), "");
  {
    AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c);  // still empty: header comes now
    writer.write(sample());
  }
  auto lines = lines_of(read_file(path()));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "#Software: easedge");
}

TEST_F(AccessLogWriterTest, ReopenOfANonEmptyFileAddsNoHeader) {
  AccessLogOptions options;
  options.flush_interval = std::chrono::hours(1);
  AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c, options);
  writer.write(sample());
  std::filesystem::rename(path(), dir_ / "access.log.1");
  ASSERT_FALSE(writer.reopen());
  writer.write(sample());
  ASSERT_FALSE(writer.reopen());  // writes header + line to the new file, then reopens it: no second header
  writer.write(sample());
  writer.flush();
  auto lines = lines_of(read_file(path()));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "#Software: easedge");
  EXPECT_EQ(lines[4] + "\n", w3c(sample()));
  EXPECT_EQ(lines[5], lines[4]);
}

TEST_F(AccessLogWriterTest, ConcurrentWritesDuringRotation) {
  constexpr int thread_count = 4;
  constexpr int rotations = 50;
  std::atomic<std::size_t> written{0};
  {
    AccessLogOptions options;
    options.flush_bytes = 2048;
    options.flush_interval = 1ms;
    AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c, options);
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < thread_count; ++t)
      threads.emplace_back([&] {
        while (!done) {
          writer.write(sample());
          ++written;
        }
      });
    for (int r = 0; r < rotations; ++r) {
      std::filesystem::rename(path(), dir_ / ("access.log." + std::to_string(r)));
      EXPECT_FALSE(writer.reopen());  // not ASSERT: the writer threads must still be joined
      std::this_thread::sleep_for(1ms);
    }
    done = true;
    for (auto& thread : threads) thread.join();
  }
  // Every file that got lines starts with the header; no line is lost or torn.
  std::size_t records = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    auto lines = lines_of(read_file(entry.path()));
    if (lines.empty()) continue;
    ASSERT_GE(lines.size(), 5u) << entry.path();
    EXPECT_EQ(lines[0], "#Software: easedge") << entry.path();
    EXPECT_EQ(lines[3], "#Fields: " + std::string(w3c_fields));
    for (std::size_t i = 4; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i] + "\n", w3c(sample())) << entry.path() << ":" << i;
      ++records;
    }
  }
  EXPECT_EQ(records, written.load());
}

TEST_F(AccessLogWriterTest, JsonHasNoHeader) {
  {
    AccessLogWriter writer(path().string(), config::AccessLogFormat::json);
    writer.write(sample());
  }
  EXPECT_EQ(read_file(path()), json(sample()));
}

TEST_F(AccessLogWriterTest, BuffersUntilFlush) {
  AccessLogOptions options;
  options.flush_interval = std::chrono::hours(1);  // only explicit flushes and size wake-ups
  AccessLogWriter writer(path().string(), config::AccessLogFormat::json, options);
  writer.write(sample());
  EXPECT_EQ(read_file(path()), "");  // still in memory: no write(2) per line
  writer.flush();
  EXPECT_EQ(read_file(path()), json(sample()));
}

TEST_F(AccessLogWriterTest, IntervalFlushes) {
  AccessLogOptions options;
  options.flush_interval = 10ms;
  AccessLogWriter writer(path().string(), config::AccessLogFormat::json, options);
  writer.write(sample());
  // Waits for the behaviour (the flush thread writing on its own), bounded so a hang fails the test.
  for (int i = 0; i < 1000 && read_file(path()).empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(read_file(path()), json(sample()));
}

TEST_F(AccessLogWriterTest, SizeWakesTheFlusher) {
  AccessLogOptions options;
  options.flush_interval = std::chrono::hours(1);
  options.flush_bytes = 1;
  AccessLogWriter writer(path().string(), config::AccessLogFormat::json, options);
  writer.write(sample());
  for (int i = 0; i < 1000 && read_file(path()).empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(read_file(path()), json(sample()));
}

TEST_F(AccessLogWriterTest, WritersFlushThemselvesAboveTheCap) {
  AccessLogOptions options;
  options.flush_interval = std::chrono::hours(1);
  options.flush_bytes = 1 << 30;
  options.max_pending_bytes = 1;
  AccessLogWriter writer(path().string(), config::AccessLogFormat::json, options);
  writer.write(sample());
  EXPECT_EQ(read_file(path()), json(sample()));
}

TEST_F(AccessLogWriterTest, ConcurrentWritersNeverInterleave) {
  constexpr int thread_count = 8;
  constexpr int line_count = 2000;
  {
    AccessLogOptions options;
    options.flush_bytes = 4096;
    AccessLogWriter writer(path().string(), config::AccessLogFormat::json, options);
    std::vector<std::thread> threads;
    for (int t = 0; t < thread_count; ++t) {
      threads.emplace_back([&writer, t] {
        std::string device = "DEV" + std::to_string(t);
        for (int i = 0; i < line_count; ++i) {
          AccessLogRecord r = sample();
          r.device_id = device;
          r.bytes_in = static_cast<std::uint64_t>(i);
          writer.write(r);
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  auto lines = lines_of(read_file(path()));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(thread_count * line_count));
  std::vector<std::int64_t> next(thread_count, 0);
  for (const auto& line : lines) {
    auto o = parse_json_line(line + "\n");
    int t = std::stoi(std::string(o["device_id"].as_string()).substr(3));
    // Each thread's lines appear complete and in the order it wrote them.
    EXPECT_EQ(o["bytes_in"].as_int64(), next[static_cast<std::size_t>(t)]++);
  }
}

TEST_F(AccessLogWriterTest, ReopenAfterRotation) {
  AccessLogWriter writer(path().string(), config::AccessLogFormat::w3c);
  writer.write(sample());
  auto rotated = dir_ / "access.log.1";
  std::filesystem::rename(path(), rotated);
  AccessLogRecord after = sample();
  after.device_id = "AFTER";
  after.uri_query = "after";
  EXPECT_FALSE(writer.reopen());
  writer.write(after);
  writer.flush();
  auto old_lines = lines_of(read_file(rotated));
  ASSERT_EQ(old_lines.size(), 5u);  // header + the line written before the rotation
  EXPECT_EQ(old_lines[4] + "\n", w3c(sample()));
  auto new_lines = lines_of(read_file(path()));
  ASSERT_EQ(new_lines.size(), 5u);  // the new file starts with its own header
  EXPECT_EQ(new_lines[0], "#Software: easedge");
  EXPECT_EQ(new_lines[4] + "\n", w3c(after));
}

TEST_F(AccessLogWriterTest, ReopenFailureKeepsTheOldFile) {
  auto sub = dir_ / "sub";
  std::filesystem::create_directories(sub);
  auto file = sub / "access.log";
  AccessLogWriter writer(file.string(), config::AccessLogFormat::json);
  std::filesystem::rename(sub, dir_ / "moved");  // the directory is gone: reopening cannot create the file
  EXPECT_TRUE(writer.reopen());
  writer.write(sample());
  writer.flush();
  EXPECT_EQ(read_file(dir_ / "moved" / "access.log"), json(sample()));
  EXPECT_EQ(writer.write_errors(), 0u);
}

TEST_F(AccessLogWriterTest, UnopenableFileThrowsAtStartup) {
  EXPECT_THROW(AccessLogWriter((dir_ / "missing" / "access.log").string(), config::AccessLogFormat::w3c),
               std::system_error);
}

}  // namespace
}  // namespace easedge::proxy
