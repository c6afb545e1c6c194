// The real `ferry page-server` against Ferry's own client and against raw
// byte streams: wire compatibility with CRIU (both header layouts), the
// images it writes (read back, decoded by Debian's crit), plain and TLS, and
// every kind of bad input.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "build_config.h"
#include "cli/options.h"
#include "image/image_dir.h"
#include "image/pagemap_image.h"
#include "pageserver/page_server_client.h"
#include "support/page_server_process.h"
#include "support/subprocess.h"
#include "support/test_pki.h"
#include "tls/connection_factory.h"

#if FERRY_HAVE_GNUTLS
#include <gnutls/gnutls.h>

#include <thread>
#endif

namespace ferry::test {
namespace {

using Bytes = std::vector<std::byte>;

using PageServer = PageServerProcess;

Options client_options(int port, const TestPki* pki) {
  Options o;
  o.command = Command::kDump;
  o.address = "127.0.0.1";
  o.port = static_cast<uint16_t>(port);
  o.io_timeout = 20;
  if (pki) {
    o.tls.enabled = true;
    o.tls.cacert = pki->cacert();
    o.tls.cacert_given = true;
    o.tls.cacrl = "/nonexistent/ferry-test/cacrl.pem";
    o.tls.cert = pki->cert();
    o.tls.cert_given = true;
    o.tls.key = pki->key();
    o.tls.key_given = true;
  }
  return o;
}

std::unique_ptr<Transport> connect_to(const Options& o) {
  Result<ConnectionFactory> f = ConnectionFactory::create(o, ConnectionFactory::Side::kClient);
  if (!f) throw std::runtime_error(f.error().message());
  Result<std::unique_ptr<Transport>> t = f->connect();
  if (!t) throw std::runtime_error(t.error().message());
  return std::move(*t);
}

// Page contents that differ for every page, seed and address.
Bytes pages_of(uint64_t seed, uint64_t vaddr, uint64_t nr_pages) {
  Bytes out(nr_pages * kPageSize);
  for (size_t i = 0; i < out.size() / 8; ++i) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + vaddr + i * 8;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    std::memcpy(out.data() + i * 8, &x, 8);
  }
  return out;
}

struct SentPagemap {
  PagemapId id;
  std::vector<PagemapEntry> entries;
};

// Two processes and one shared memory segment; entries of every flag
// combination, one larger than the server's 1 MiB data buffer, and one not a
// multiple of 16 KiB.
std::vector<SentPagemap> sample_snapshot() {
  return {
      {{PagemapId::Kind::kProcess, 4242},
       {{0x400000, 3, kPePresent}, {0x403000, 1, kPePresent | kPeLazy}, {0x7f0000000000, 800, kPePresent | kPeLazy},
        {0x7f0000400000, 5, kPeLazy}, {0x7ffff0000000, 2, kPePresent}}},
      {{PagemapId::Kind::kProcess, 4243}, {{0x10000, 1, kPePresent}}},
      {{PagemapId::Kind::kShmem, 7}, {{0, 17, kPePresent}}},
  };
}

void send_snapshot(PageSink& sink, const std::vector<SentPagemap>& snapshot) {
  for (const SentPagemap& p : snapshot) {
    Result<bool> parent = sink.begin(p.id);
    ASSERT_TRUE(parent) << parent.error().message();
    EXPECT_FALSE(*parent);
    for (const PagemapEntry& e : p.entries) {
      if (!e.has_data()) {
        Status s = sink.add_entry(e);
        ASSERT_TRUE(s) << s.error().message();
        continue;
      }
      Bytes data = pages_of(p.id.id, e.vaddr, e.nr_pages);
      ASSERT_TRUE(sink.add_entry(e));
      // Uneven pieces: the client must still keep records on 16 KiB boundaries.
      size_t at = 0, piece = 12288;
      while (at < data.size()) {
        size_t n = std::min(piece, data.size() - at);
        Status s = sink.write_data(std::span(data).subspan(at, n));
        ASSERT_TRUE(s) << s.error().message();
        at += n;
        piece = piece == 12288 ? 1 << 20 : 12288;
      }
    }
  }
}

// Reads the images back and compares them page by page with what was sent.
void expect_images(const std::string& dir_path, const std::vector<SentPagemap>& snapshot) {
  Result<ImageDir> dir = ImageDir::open(dir_path);
  ASSERT_TRUE(dir);
  for (const SentPagemap& p : snapshot) {
    Result<PagemapImage> image = read_pagemap_image(*dir, p.id.image_name());
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->entries, p.entries) << p.id.image_name();
    std::string pages = read_file(dir_path + "/" + pages_image_name(image->pages_id));
    ASSERT_EQ(pages.size(), image->pages_with_data() * kPageSize);
    size_t offset = 0;
    for (const PagemapEntry& e : p.entries) {
      if (!e.has_data()) continue;
      Bytes want = pages_of(p.id.id, e.vaddr, e.nr_pages);
      for (uint64_t i = 0; i < e.nr_pages; ++i) {
        ASSERT_EQ(std::memcmp(pages.data() + offset + i * kPageSize, want.data() + i * kPageSize, kPageSize), 0)
            << p.id.image_name() << " page " << i << " of the entry at " << e.vaddr;
      }
      offset += e.nr_pages * kPageSize;
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir_path + "/" + p.id.image_name()).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// A raw TCP peer for byte-exact streams.
class RawPeer {
 public:
  explicit RawPeer(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawPeer() { close(); }
  void send(const Bytes& b) {
    size_t at = 0;
    while (at < b.size()) {
      ssize_t n = ::send(fd_, b.data() + at, b.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may have hung up on bad input
      at += static_cast<size_t>(n);
    }
  }
  Bytes receive(size_t n) {
    Bytes out(n);
    size_t at = 0;
    while (at < n) {
      ssize_t r = ::recv(fd_, out.data() + at, n - at, 0);
      if (r <= 0) break;
      at += static_cast<size_t>(r);
    }
    out.resize(at);
    return out;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Bytes hex(const std::string& text) {
  Bytes out;
  std::istringstream in(text);
  std::string h;
  while (in >> h) out.push_back(static_cast<std::byte>(std::stoul(h, nullptr, 16)));
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A header in either layout, built by hand (not with Ferry's encoder).
Bytes header(bool legacy, uint32_t cmd, uint64_t nr_pages, uint64_t vaddr, uint64_t dst_id) {
  Bytes out(legacy ? 24 : 32);
  std::memcpy(out.data(), &cmd, 4);
  if (legacy) {
    uint32_t n = static_cast<uint32_t>(nr_pages);
    std::memcpy(out.data() + 4, &n, 4);
    std::memcpy(out.data() + 8, &vaddr, 8);
    std::memcpy(out.data() + 16, &dst_id, 8);
  } else {
    std::memcpy(out.data() + 8, &nr_pages, 8);
    std::memcpy(out.data() + 16, &vaddr, 8);
    std::memcpy(out.data() + 24, &dst_id, 8);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The worked example of page-server-protocol.md §13, byte for byte.

class SpecExample : public ::testing::TestWithParam<bool> {};

TEST_P(SpecExample, ServerWritesTheImagesTheSpecDescribes) {
  bool legacy = GetParam();
  TempDir dir;
  PageServer server(dir.path(), {});
  ASSERT_TRUE(server.ready());
  Bytes open2 = legacy ? hex("04 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  01 d2 04 00 00 00 00 00")
                       : hex("04 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00 "
                             "00 00 00 00 00 00 00 00  01 d2 04 00 00 00 00 00");
  Bytes add = legacy ? hex("06 00 04 00 02 00 00 00  00 00 56 34 12 7f 00 00  01 d2 04 00 00 00 00 00")
                     : hex("06 00 04 00 00 00 00 00  02 00 00 00 00 00 00 00 "
                           "00 00 56 34 12 7f 00 00  01 d2 04 00 00 00 00 00");
  Bytes close = legacy ? hex("23 10 00 00 00 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00")
                       : hex("23 10 00 00 00 00 00 00  00 00 00 00 00 00 00 00 "
                             "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00");
  Bytes data = pages_of(1234, 0x7f1234560000, 2);
  RawPeer peer(server.port());
  peer.send(open2);
  EXPECT_EQ(peer.receive(1), hex("00"));
  peer.send(concat({add, data}));
  peer.send(close);
  EXPECT_EQ(peer.receive(4), hex("00 00 00 00"));
  peer.close();
  ProcessResult r = server.wait();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(legacy ? "CRIU 4.1" : "CRIU 4.2"), std::string::npos) << r.err;

  // image-format.md §5: the count in both fields (10 02 and 28 02), so every
  // CRIU and crit reads it; CRIU 4.2 itself writes 10 00 there.
  Bytes pagemap = hex("19 43 56 54 25 40 08 56  04 00 00 00 08 81 80 04 "
                      "0e 00 00 00 08 80 80 d8 a2 a3 e2 1f 10 02 20 04 28 02");
  std::string got = read_file(dir.file("pagemap-1234.img"));
  EXPECT_EQ(Bytes(reinterpret_cast<const std::byte*>(got.data()), reinterpret_cast<const std::byte*>(got.data()) + got.size()),
            pagemap);
  std::string pages = read_file(dir.file("pages-65537.img"));
  ASSERT_EQ(pages.size(), 8192u);
  EXPECT_EQ(std::memcmp(pages.data(), data.data(), 8192), 0);
  EXPECT_EQ(files_in(dir.path()), (std::vector<std::string>{"pagemap-1234.img", "pages-65537.img"}));
}

INSTANTIATE_TEST_SUITE_P(Layouts, SpecExample, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Criu41" : "Criu42"; });

// ---------------------------------------------------------------------------
// Ferry's client to Ferry's server: plain and TLS, both layouts.

struct StreamCase {
  bool tls;
  bool legacy;
};

void PrintTo(const StreamCase& c, std::ostream* os) { *os << (c.tls ? "TLS" : "plain") << (c.legacy ? " 4.1" : " 4.2"); }

class StreamPages : public ::testing::TestWithParam<StreamCase> {};

TEST_P(StreamPages, EveryPageArrivesIntact) {
  StreamCase c = GetParam();
#if !FERRY_HAVE_GNUTLS
  if (c.tls) {
    GTEST_SKIP() << "built without TLS";
  }
#endif
  std::unique_ptr<TestPki> pki = c.tls ? std::make_unique<TestPki>() : nullptr;
  TempDir dir;
  std::vector<std::string> extra = pki ? pki->tls_args() : std::vector<std::string>{};
  PageServer server(dir.path(), extra);
  ASSERT_TRUE(server.ready());
  Options o = client_options(server.port(), pki.get());
  PageServerClient client(connect_to(o), c.legacy ? ps::Layout::kCriu41 : ps::Layout::kCriu42);
  if (c.tls) {
    EXPECT_NE(client.description().find("TLS"), std::string::npos) << client.description();
  }
  std::vector<SentPagemap> snapshot = sample_snapshot();
  send_snapshot(client, snapshot);
  Status s = client.commit();
  ASSERT_TRUE(s) << s.error().message();
  ProcessResult r = server.wait();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_images(dir.path(), snapshot);
  EXPECT_EQ(files_in(dir.path()).size(), 6u);
}

INSTANTIATE_TEST_SUITE_P(Transports, StreamPages,
                         ::testing::Values(StreamCase{false, false}, StreamCase{false, true}, StreamCase{true, false},
                                           StreamCase{true, true}),
                         [](const auto& info) {
                           return std::string(info.param.tls ? "Tls" : "Plain") + (info.param.legacy ? "Criu41" : "Criu42");
                         });

#if FERRY_HAVE_GNUTLS
// A CRIU receiver reads every header with one record read and takes page
// data in whole records that must end on each 64 KiB boundary of an entry's
// data (page-server-protocol.md §3). A bare GnuTLS server here records the
// record sizes Ferry's client sends, answering like a page server.
TEST(PageServerClientFraming, TlsRecordsFitWhatACriuReceiverNeeds) {
  TestPki pki;
  Result<TcpListener> listener = TcpListener::listen_on("127.0.0.1", 0);
  ASSERT_TRUE(listener);
  uint16_t port = listener->port();
  std::string failure;
  std::vector<std::string> misframed;
  size_t headers = 0, data_records = 0;
  std::thread server([&] {
    Result<TcpConnection> c = listener->accept_one(std::chrono::seconds(20));
    if (!c) {
      failure = c.error().message();
      return;
    }
    gnutls_certificate_credentials_t cred;
    gnutls_certificate_allocate_credentials(&cred);
    gnutls_certificate_set_x509_key_file(cred, pki.cert().c_str(), pki.key().c_str(), GNUTLS_X509_FMT_PEM);
    gnutls_session_t s;
    gnutls_init(&s, GNUTLS_SERVER);
    gnutls_set_default_priority(s);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
    gnutls_transport_set_int(s, c->fd.get());
    int rc;
    do {
      rc = gnutls_handshake(s);
    } while (rc < 0 && !gnutls_error_is_fatal(rc));
    uint64_t data_left = 0, data_done = 0;
    while (rc >= 0) {
      gnutls_packet_t packet;
      rc = static_cast<int>(gnutls_record_recv_packet(s, &packet));
      if (rc <= 0) break;
      gnutls_datum_t d;
      gnutls_packet_get(packet, &d, nullptr);
      size_t n = d.size;
      if (data_left > 0) {
        uint64_t boundary = (data_done / 65536 + 1) * 65536;
        if (n > data_left || data_done + n > boundary)
          misframed.push_back(fmt::format("{} bytes at data offset {} of {}", n, data_done, data_done + data_left));
        data_done += n;
        data_left -= std::min<uint64_t>(n, data_left);
        ++data_records;
      } else if (n != 32) {
        misframed.push_back(fmt::format("a header in a record of {} bytes", n));
      } else {
        ++headers;
        uint32_t cmd;
        uint64_t nr_pages;
        std::memcpy(&cmd, d.data, 4);
        std::memcpy(&nr_pages, d.data + 8, 8);
        if ((cmd & 0xffff) == 4) {
          char no = 0;
          gnutls_record_send(s, &no, 1);
        } else if ((cmd & 0xffff) == 6 && ((cmd >> 16) & kPePresent)) {
          data_left = nr_pages * kPageSize;
          data_done = 0;
        } else if (cmd == 0x1023) {
          int32_t ok = 0;
          gnutls_record_send(s, &ok, 4);
          gnutls_packet_deinit(packet);
          gnutls_bye(s, GNUTLS_SHUT_WR);
          break;
        }
      }
      gnutls_packet_deinit(packet);
    }
    if (rc < 0) failure = gnutls_strerror(rc);
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
  });
  {
    PageServerClient client(connect_to(client_options(port, &pki)), ps::Layout::kCriu42);
    send_snapshot(client, sample_snapshot());
    Status committed = client.commit();
    EXPECT_TRUE(committed) << committed.error().message();
  }
  server.join();
  EXPECT_EQ(failure, "");
  EXPECT_TRUE(misframed.empty()) << misframed.front();
  EXPECT_EQ(headers, 3u + 7u + 1u);  // OPEN2s, ADD_Fs, CLOSE
  EXPECT_GT(data_records, 200u);
}
#endif

TEST(PageServerImages, DebianCritDecodesThePagemap) {
  TempDir dir;
  PageServer server(dir.path(), {});
  ASSERT_TRUE(server.ready());
  PageServerClient client(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
  std::vector<SentPagemap> snapshot = sample_snapshot();
  send_snapshot(client, snapshot);
  ASSERT_TRUE(client.commit());
  ASSERT_EQ(server.wait().exit_code, 0);

  for (const SentPagemap& p : snapshot) {
    ProcessResult r = run({"crit", "decode", "-i", dir.file(p.id.image_name())});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["magic"], "PAGEMAP");
    const auto& entries = j["entries"];
    ASSERT_EQ(entries.size(), p.entries.size() + 1);
    EXPECT_GE(entries[0]["pages_id"].get<uint64_t>(), 65537u);
    for (size_t i = 0; i < p.entries.size(); ++i) {
      const auto& e = entries[i + 1];
      // Debian's crit (3.17) knows the count only as field 2, which it
      // calls nr_pages.
      EXPECT_EQ(e["vaddr"].get<uint64_t>(), p.entries[i].vaddr) << e.dump();
      EXPECT_EQ(e["nr_pages"].get<uint64_t>(), p.entries[i].nr_pages) << e.dump();
      EXPECT_EQ(e["flags"].get<uint32_t>(), p.entries[i].flags) << e.dump();
    }
  }
}

// ---------------------------------------------------------------------------
// Bad input: each is refused with a message naming the request, and nothing
// is left in -D.

struct BadStream {
  const char* name;
  Bytes stream;         // after the first OPEN2 of PID 1234 (4.2 layout)
  const char* message;  // expected in the server's error
};

constexpr uint64_t kDst = (1234 << 8) | 1;

std::vector<BadStream> bad_streams() {
  bool l = false;
  return {
      {"UnknownCommand", header(l, 0x99, 1, 0x1000, kDst), "unknown command"},
      {"UnknownFlags", header(l, (0x10u << 16) | 6, 1, 0x1000, kDst), "flags"},
      {"PresentWithParent", header(l, (5u << 16) | 6, 1, 0x1000, kDst), "flags"},
      {"ZeroPages", header(l, (4u << 16) | 6, 0, 0x1000, kDst), "no pages"},
      {"HugeCount", header(l, (4u << 16) | 6, uint64_t{1} << 50, 0x1000, kDst), "past the end of the address space"},
      {"Unaligned", header(l, (4u << 16) | 6, 1, 0x1001, kDst), "not page aligned"},
      {"Overflowing", header(l, (4u << 16) | 6, 2, 0xfffffffffffff000ull, kDst), "past the end of the address space"},
      {"Overlapping",
       concat({header(l, (2u << 16) | 6, 4, 0x10000, kDst), header(l, (2u << 16) | 6, 1, 0x12000, kDst)}),
       "overlaps or precedes"},
      {"Decreasing", concat({header(l, (2u << 16) | 6, 1, 0x20000, kDst), header(l, (2u << 16) | 6, 1, 0x10000, kDst)}),
       "overlaps or precedes"},
      {"OtherDstId", header(l, (2u << 16) | 6, 1, 0x1000, (999 << 8) | 1), "while the open pagemap is that of"},
      {"UnknownDstType", header(l, 4, 0, 0, (1234 << 8) | 9), "unknown pagemap type"},
      {"ParentNotInParent", header(l, (1u << 16) | 6, 1, 0x1000, kDst), "parent snapshot"},
      {"GetToReceiver", header(l, 7, 1, 0x1000, 1234), "GET sent to a receiving page server"},
      {"OpenedTwice", header(l, 4, 0, 0, kDst), "opened a second time"},
      {"DataShort", concat({header(l, (4u << 16) | 6, 4, 0x1000, kDst), pages_of(1, 0x1000, 1)}), "short"},
      {"NoClose", header(l, (2u << 16) | 6, 1, 0x1000, kDst), "without CLOSE"},
  };
}

void PrintTo(const BadStream& b, std::ostream* os) { *os << b.name; }

class BadInput : public ::testing::TestWithParam<BadStream> {};

TEST_P(BadInput, IsRefusedAndNothingIsPublished) {
  const BadStream& b = GetParam();
  TempDir dir;
  PageServer server(dir.path(), {"--io-timeout", "10"});
  ASSERT_TRUE(server.ready());
  {
    RawPeer peer(server.port());
    peer.send(header(false, 4, 0, 0, kDst));
    EXPECT_EQ(peer.receive(1), hex("00"));
    peer.send(b.stream);
    // End of our input: the server must have refused by now, or it sees the end.
  }
  ProcessResult r = server.wait();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find(b.message), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("request"), std::string::npos) << r.err;
  EXPECT_TRUE(files_in(dir.path()).empty()) << files_in(dir.path())[0];
}

INSTANTIATE_TEST_SUITE_P(Streams, BadInput, ::testing::ValuesIn(bad_streams()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PageServerFaults, NotThePageServerProtocolIsRefusedAtOnce) {
  TempDir dir;
  PageServer server(dir.path(), {});
  ASSERT_TRUE(server.ready());
  RawPeer peer(server.port());
  peer.send(hex("47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a 48 6f 73 74 3a 20 78 0d 0a 0d 0a"));  // "GET / HTTP/1.1"
  ProcessResult r = server.wait();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not speak the page-server protocol"), std::string::npos) << r.err;
}

TEST(PageServerFaults, ClientThatDiesHalfWayLeavesNoImages) {
  TempDir dir;
  PageServer server(dir.path(), {});
  ASSERT_TRUE(server.ready());
  {
    PageServerClient client(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
    ASSERT_TRUE(client.begin({PagemapId::Kind::kProcess, 77}));
    ASSERT_TRUE(client.write_pages({0x1000, 4, kPePresent}, pages_of(77, 0x1000, 4)));
    ASSERT_TRUE(client.add_entry({0x100000, 256, kPePresent}));
    Bytes half = pages_of(77, 0x100000, 128);
    ASSERT_TRUE(client.write_data(half));
    client.abort();
  }
  ProcessResult r = server.wait();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("discarded the incomplete images"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pagemap-77.img"), std::string::npos) << r.err;
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(PageServerFaults, ExistingImagesAreNotOverwritten) {
  TempDir dir;
  write_file(dir.file("pagemap-1234.img"), "precious", 0600);
  PageServer server(dir.path(), {});
  ASSERT_TRUE(server.ready());
  {
    RawPeer peer(server.port());
    peer.send(header(false, 4, 0, 0, kDst));
    peer.receive(1);
  }
  ProcessResult r = server.wait();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exists already"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir.file("pagemap-1234.img")), "precious");
  EXPECT_EQ(files_in(dir.path()).size(), 1u);
}

TEST(PageServerFaults, WrongKeyFailsBeforeListening) {
#if !FERRY_HAVE_GNUTLS
  GTEST_SKIP() << "built without TLS";
#endif
  TestPki pki;
  TempDir dir;
  write_file(dir.file("bad-key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
  ProcessResult r = run_ferry({"page-server", "-D", dir.path(), "--port", std::to_string(free_port()), "--tls",
                               "--tls-cacert", pki.cacert(), "--tls-cert", pki.cert(), "--tls-key", dir.file("bad-key.pem")},
                              RunOptions{{}, std::chrono::milliseconds(10000), {}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(r.timed_out) << "waited for a client with an unusable key";
  EXPECT_NE(r.err.find("bad-key.pem"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("listening"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------
// Incremental snapshots: PARENT, OPEN2's answer, and PE_PARENT entries.

TEST(PageServerParent, PagesMarkedInTheParentAreCheckedAgainstIt) {
  TempDir root;
  std::string first = root.file("first"), second = root.file("second");
  std::filesystem::create_directory(first);
  std::filesystem::create_directory(second);
  PagemapId pid{PagemapId::Kind::kProcess, 500};
  {
    PageServer server(first, {});
    ASSERT_TRUE(server.ready());
    PageServerClient client(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
    ASSERT_TRUE(client.begin(pid));
    ASSERT_TRUE(client.write_pages({0x10000, 8, kPePresent}, pages_of(1, 0x10000, 8)));
    ASSERT_TRUE(client.commit());
    ASSERT_EQ(server.wait().exit_code, 0);
  }
  PageServer server(second, {"--prev-images-dir", "../first"});
  ASSERT_TRUE(server.ready());
  PageServerClient client(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
  Result<bool> in_parent = client.parent_has(pid);
  ASSERT_TRUE(in_parent);
  EXPECT_TRUE(*in_parent);
  Result<bool> other = client.parent_has({PagemapId::Kind::kProcess, 501});
  ASSERT_TRUE(other);
  EXPECT_FALSE(*other);
  Result<bool> has_parent = client.begin(pid);
  ASSERT_TRUE(has_parent);
  EXPECT_TRUE(*has_parent);
  ASSERT_TRUE(client.add_entry({0x10000, 2, kPeParent}));
  ASSERT_TRUE(client.write_pages({0x12000, 1, kPePresent}, pages_of(500, 0x12000, 1)));
  ASSERT_TRUE(client.add_entry({0x13000, 5, kPeParent}));
  Status s = client.commit();
  ASSERT_TRUE(s) << s.error().message();
  ProcessResult r = server.wait();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_images(second, {{pid, {{0x10000, 2, kPeParent}, {0x12000, 1, kPePresent}, {0x13000, 5, kPeParent}}}});
  EXPECT_EQ(std::filesystem::read_symlink(second + "/parent"), "../first");
}

// ---------------------------------------------------------------------------
// Lazy migration: GET served from the images of -D.

TEST(LazyPageServer, ServesStoredPagesOnRequest) {
  TempDir dir;
  std::vector<SentPagemap> snapshot = sample_snapshot();
  {
    PageServer server(dir.path(), {});
    ASSERT_TRUE(server.ready());
    PageServerClient client(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
    send_snapshot(client, snapshot);
    ASSERT_TRUE(client.commit());
    ASSERT_EQ(server.wait().exit_code, 0);
  }
  PageServer server(dir.path(), {"--lazy-pages"});
  ASSERT_TRUE(server.ready());
  RemotePageSource source(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
  Bytes buffer(64 * kPageSize);
  // One page in the middle of the big entry.
  Result<uint64_t> n = source.read_pages(4242, 0x7f0000000000 + 10 * kPageSize, std::span(buffer).first(kPageSize));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  Bytes want = pages_of(4242, 0x7f0000000000, 800);
  EXPECT_EQ(std::memcmp(buffer.data(), want.data() + 10 * kPageSize, kPageSize), 0);
  // Clamped at the end of the stored run: 0x400000 (3 pages) and 0x403000 (1
  // page) are contiguous, so 4 pages come back for a 64-page request.
  n = source.read_pages(4242, 0x400000, buffer);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 4u);
  Bytes a = pages_of(4242, 0x400000, 3), b = pages_of(4242, 0x403000, 1);
  EXPECT_EQ(std::memcmp(buffer.data(), a.data(), a.size()), 0);
  EXPECT_EQ(std::memcmp(buffer.data() + a.size(), b.data(), b.size()), 0);
  Status closed = source.close();
  ASSERT_TRUE(closed) << closed.error().message();
  ProcessResult r = server.wait();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("served 2 GET requests, 5 pages"), std::string::npos) << r.err;
}

TEST(LazyPageServer, MissingPageIsAClearErrorNotAHang) {
  TempDir dir;
  {
    PageServer server(dir.path(), {});
    ASSERT_TRUE(server.ready());
    PageServerClient client(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
    send_snapshot(client, sample_snapshot());
    ASSERT_TRUE(client.commit());
    ASSERT_EQ(server.wait().exit_code, 0);
  }
  PageServer server(dir.path(), {"--lazy-pages"});
  ASSERT_TRUE(server.ready());
  RemotePageSource source(connect_to(client_options(server.port(), nullptr)), ps::Layout::kCriu42);
  Bytes buffer(kPageSize);
  // 0x7f0000400000 holds PE_LAZY pages without data: nothing to serve.
  Result<uint64_t> n = source.read_pages(4242, 0x7f0000400000, buffer);
  EXPECT_FALSE(n);
  ProcessResult r = server.wait();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no stored page at 0x7f0000400000"), std::string::npos) << r.err;
}

TEST(PageServerCommand, ListensOnIpv6AndHostNames) {
  for (std::string address : {"::1", "localhost"}) {
    TempDir dir;
    PageServer server(dir.path(), {}, address);
    ASSERT_TRUE(server.ready()) << address;
    Options o = client_options(server.port(), nullptr);
    o.address = address;
    PageServerClient client(connect_to(o), ps::Layout::kCriu42);
    ASSERT_TRUE(client.begin({PagemapId::Kind::kProcess, 9}));
    ASSERT_TRUE(client.write_pages({0x1000, 1, kPePresent}, pages_of(9, 0x1000, 1)));
    ASSERT_TRUE(client.commit());
    ProcessResult r = server.wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_images(dir.path(), {{{PagemapId::Kind::kProcess, 9}, {{0x1000, 1, kPePresent}}}});
  }
}

// ---------------------------------------------------------------------------
// Readiness as CRIU signals it.

TEST(PageServerCommand, DaemonWritesPidfileAndServes) {
  TempDir dir;
  int port = free_port();
  ProcessResult r = run_ferry({"page-server", "-D", dir.path(), "--address", "127.0.0.1", "--port",
                               std::to_string(port), "-d", "--pidfile", "ps.pid", "-o", "ps.log", "-v4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  pid_t pid = std::stoi(read_file(dir.file("ps.pid")));
  EXPECT_EQ(::kill(pid, 0), 0);
  PageServerClient client(connect_to(client_options(port, nullptr)), ps::Layout::kCriu42);
  ASSERT_TRUE(client.begin({PagemapId::Kind::kProcess, 9}));
  ASSERT_TRUE(client.write_pages({0x1000, 1, kPePresent}, pages_of(9, 0x1000, 1)));
  ASSERT_TRUE(client.commit());
  // The daemon is not our child: wait for its PID to go away.
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) ::usleep(50000);
  EXPECT_NE(::kill(pid, 0), 0);
  expect_images(dir.path(), {{{PagemapId::Kind::kProcess, 9}, {{0x1000, 1, kPePresent}}}});
  EXPECT_NE(read_file(dir.file("ps.log")).find("received 1 pagemap(s), 1 pages"), std::string::npos);
}

}  // namespace
}  // namespace ferry::test
