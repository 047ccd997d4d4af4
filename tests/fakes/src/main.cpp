// fake-wechat: the fake WeChat as a standalone server for scripts/run's demo and manual testing.
//   fake-wechat --listen 127.0.0.1:PORT [--tls] [--state-dir DIR]
//               [--account APPID,SECRET,TOKEN,AESKEY,GH_ID[,MODE[,CALLBACK_URL]]]… [--log-level L]
// Prints "url=…" (and "ca_file=…" with --tls) on stdout, writes them to DIR/fake-wechat.json when
// --state-dir is given, and serves until SIGTERM or SIGINT. Control endpoints: fake_wechat.hpp.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "scrm/common/log.hpp"
#include "scrm/fakes/fake_wechat.hpp"

namespace {

int usage(const char* why) {
    std::cerr << "fake-wechat: " << why << "\n"
              << "usage: fake-wechat --listen HOST:PORT [--tls] [--state-dir DIR]\n"
              << "         [--account APPID,SECRET,TOKEN,AESKEY,GH_ID[,MODE[,CALLBACK_URL]]]...\n"
              << "         [--log-level debug|info|warn|error]\n";
    return 2;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, sep)) out.push_back(item);
    return out;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
    scrm::fakes::fake_wechat_options opts;
    std::vector<scrm::fakes::account> accounts;
    bool listen_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        if (arg == "--listen") {
            const char* v = value();
            if (!v) return usage("--listen needs HOST:PORT");
            const std::string hp = v;
            const auto colon = hp.rfind(':');
            if (colon == std::string::npos) return usage("--listen needs HOST:PORT");
            opts.host = hp.substr(0, colon);
            if (opts.host.size() > 1 && opts.host.front() == '[') {
                opts.host = opts.host.substr(1, opts.host.size() - 2);
            }
            char* end = nullptr;
            const long port = std::strtol(hp.c_str() + colon + 1, &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) return usage("bad port");
            opts.port = static_cast<std::uint16_t>(port);
            listen_given = true;
        } else if (arg == "--tls") {
            opts.tls = true;
        } else if (arg == "--state-dir") {
            const char* v = value();
            if (!v) return usage("--state-dir needs a directory");
            opts.state_dir = v;
        } else if (arg == "--account") {
            const char* v = value();
            if (!v) return usage("--account needs a value");
            const auto parts = split(v, ',');
            if (parts.size() < 5 || parts.size() > 7) return usage("--account: 5 to 7 fields");
            scrm::fakes::account a;
            a.appid = parts[0];
            a.secret = parts[1];
            a.token = parts[2];
            a.encoding_aes_key = parts[3];
            a.original_id = parts[4];
            if (parts.size() > 5) {
                auto mode = scrm::fakes::parse_encryption_mode(parts[5]);
                if (!mode) return usage("--account: MODE is plain, compatible or safe");
                a.mode = *mode;
            }
            if (parts.size() > 6) a.callback_url = parts[6];
            accounts.push_back(std::move(a));
        } else if (arg == "--log-level") {
            const char* v = value();
            scrm::log::level lvl{};
            if (!v || !scrm::log::parse_level(v, lvl)) return usage("bad --log-level");
            scrm::log::set_min_level(lvl);
        } else if (arg == "--help" || arg == "-h") {
            usage("a fake WeChat API server and callback sender");
            return 0;
        } else {
            return usage(("unknown argument " + arg).c_str());
        }
    }
    if (!listen_given) return usage("--listen is required");

    // SIGTERM/SIGINT are waited for below; block them before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    scrm::fakes::fake_wechat fake(opts);
    for (auto& a : accounts) {
        if (!fake.api().add_account(a)) {
            std::cerr << "fake-wechat: account " << a.appid
                      << ": appid and secret are required, and a valid EncodingAESKey "
                         "outside plain mode\n";
            return 2;
        }
    }
    if (auto started = fake.start(); !started) {
        std::cerr << "fake-wechat: cannot start: " << started.error().message() << "\n";
        return 1;
    }
    std::cout << "url=" << fake.url() << "\n";
    if (opts.tls) std::cout << "ca_file=" << fake.ca_file().string() << "\n";
    std::cout.flush();
    if (!opts.state_dir.empty()) {
        std::ofstream out(opts.state_dir / "fake-wechat.json");
        out << "{\"url\":" << json_string(fake.url())
            << ",\"ca_file\":" << json_string(fake.ca_file().string()) << ",\"pid\":" << ::getpid()
            << "}\n";
    }
    int sig = 0;
    sigwait(&signals, &sig);
    scrm::log::info("fake_wechat.stopping", {{"signal", sig}});
    fake.stop();
    return 0;
}
