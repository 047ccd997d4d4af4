// Writes signed WeChat callback requests for the load generator, one per line:
// "<path and query>\t<body>". Plain mode signs only the query (a fresh nonce per request, so each
// signature triple is used once); safe mode also encrypts each message. Every request carries a
// unique MsgId, so the gateway stores every one.
//   scrm-bench-gen --appid wx… --token T --aes-key KEY --original-id gh_… --mode plain|safe
//                  --count N --first-msgid M --path /wx/<appid> > requests.txt
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <string>

#include "scrm/wechat/crypto.hpp"
#include "scrm/wechat/signature.hpp"

int main(int argc, char** argv) {
    std::map<std::string, std::string> o;
    for (int i = 1; i + 1 < argc; i += 2) o[argv[i]] = argv[i + 1];
    for (const char* k : {"--appid", "--token", "--aes-key", "--original-id", "--mode", "--count", "--first-msgid", "--path"}) {
        if (!o.count(k)) {
            std::cerr << "scrm-bench-gen: missing " << k << "\n";
            return 2;
        }
    }
    const bool safe = o["--mode"] == "safe";
    auto key = scrm::wechat::aes_key::from_encoding_aes_key(o["--aes-key"]);
    if (!key) {
        std::cerr << "scrm-bench-gen: bad --aes-key\n";
        return 2;
    }
    const long count = std::stol(o["--count"]);
    const unsigned long long first = std::stoull(o["--first-msgid"]);
    const std::string ts = std::to_string(std::time(nullptr));
    std::string line;
    for (long i = 0; i < count; ++i) {
        const std::string id = std::to_string(first + static_cast<unsigned long long>(i));
        const std::string nonce = "n" + id;
        const std::string xml = "<xml><ToUserName><![CDATA[" + o["--original-id"] +
                                "]]></ToUserName><FromUserName><![CDATA[oBenchFan" + std::to_string(i % 1000) +
                                "]]></FromUserName><CreateTime>" + ts +
                                "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[您好，我想预约明天上午的洗牙 "
                                + id + "]]></Content><MsgId>" + id + "</MsgId></xml>";
        line = o["--path"] + "?signature=" + scrm::wechat::url_signature(o["--token"], ts, nonce) +
               "&timestamp=" + ts + "&nonce=" + nonce + "&openid=oBenchFan";
        std::string body = xml;
        if (safe) {
            auto encrypted = scrm::wechat::encrypt(*key, o["--appid"], xml, scrm::wechat::system_random());
            if (!encrypted) return 1;
            line += "&encrypt_type=aes&msg_signature=" +
                    scrm::wechat::msg_signature(o["--token"], ts, nonce, *encrypted);
            body = "<xml><ToUserName><![CDATA[" + o["--original-id"] + "]]></ToUserName><Encrypt><![CDATA[" +
                   *encrypted + "]]></Encrypt></xml>";
        }
        line += "\t" + body + "\n";
        std::fwrite(line.data(), 1, line.size(), stdout);
    }
    return 0;
}
