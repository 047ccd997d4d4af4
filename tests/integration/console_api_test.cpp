// The staff console's API in-process over real HTTP and WebSocket, Redis and MariaDB, behind the
// real webhook and routing stage (docs/api.md "The console"): the conversation list (unread,
// display names, owners, holders, windows, filters, search, paging), the history with receipts,
// media and the read audit, "ignore unread", the fan panel and owners with their audit, the
// agents' view and the password change — and that no agent reads or changes another clinic's
// data, or another store's in chain-store mode.
#include <rapidjson/document.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "agent_harness.hpp"
#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/routing/live.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using gateway::json_quote;

namespace {

const std::string& password = agent_password;

rapidjson::Document parse(const http_reply& r) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    INFO(r.body);
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

std::string str(const rapidjson::Value& v) {
    return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

// GET /api/conversations?<query>: the openids listed, in order.
std::vector<std::string> listed(agent_harness& h, const std::string& tok,
                                const std::string& query = "") {
    const auto r = h.call("GET", "/api/conversations" + (query.empty() ? "" : "?" + query), tok);
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto d = parse(r);
    std::vector<std::string> out;
    for (const auto& c : d["conversations"].GetArray()) out.push_back(str(c["openid"]));
    return out;
}

// The listed conversation of `openid` (fails the test when it is not listed), as JSON text
// parsed into `doc`.
const rapidjson::Value& entry(agent_harness& h, const std::string& tok, const std::string& openid,
                              rapidjson::Document& doc) {
    const auto r = h.call("GET", "/api/conversations", tok);
    REQUIRE(r.status == 200);
    doc.Parse(r.body.c_str());
    for (const auto& c : doc["conversations"].GetArray()) {
        if (str(c["openid"]) == openid) return c;
    }
    FAIL("not listed: " << openid << " in " << r.body);
    return doc;
}

std::uint64_t unread_of(agent_harness& h, const std::string& tok, const std::string& openid) {
    rapidjson::Document d;
    return entry(h, tok, openid, d)["unread"].GetUint64();
}

// Signs in agent `name` of clinic `clinic_name` directly (clinics other than the harness's).
std::string token_of(agent_harness& h, const std::string& clinic_name, const std::string& name) {
    const auto r =
        http_call(h.port, "POST", "/api/agent/sign-in",
                  "{\"clinic\":" + json_quote(clinic_name) + ",\"name\":" + json_quote(name) +
                      ",\"password\":" + json_quote(password) + "}");
    REQUIRE(r.status == 200);
    return field(r.body, "token");
}

// A media message from `openid` as WeChat sends it: the fixture's text message with the text
// replaced by `fields` and the type by `type`.
std::string media_xml(const clinic_fixture& c, const std::string& openid, std::uint64_t msg_id,
                      const std::string& type, const std::string& fields) {
    std::string xml = c.text_xml(openid, msg_id, "@@");
    const std::string text_part =
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[@@]]></Content>";
    const auto at = xml.find(text_part);
    REQUIRE(at != std::string::npos);
    xml.replace(at, text_part.size(), "<MsgType><![CDATA[" + type + "]]></MsgType>" + fields);
    return xml;
}

std::string audit_count(const clinic_fixture& c, const std::string& action,
                        const std::string& subject) {
    return c.value(
        "SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = ? AND subject = ?",
        {c.clinic, action, subject});
}

}  // namespace

TEST_CASE("the list shows unread until a reply or ignore-unread and opening does not clear it") {
    clinic_fixture c;
    const auto a1 = c.add_agent("a1", password);
    c.add_agent("前台", password, true, std::nullopt, true, "front_desk");
    agent_harness h(c);
    const std::string tok = h.token("a1");
    const std::string desk = h.token("前台");

    h.fan_writes("oListFanAAAA01", 51001, "第一条");
    h.fan_writes(
        "oListFanAAAA01", 51002,
        "第二条消息比较长，超过四十个字的话预览会被截断，后面还有很多很多很多很多很多的文字");
    h.fan_writes("oListFanBBBB02", 51003, "你好");

    // Newest activity first; display names from the openid while nothing better is known.
    CHECK(listed(h, tok) == std::vector<std::string>{"oListFanBBBB02", "oListFanAAAA01"});
    {
        rapidjson::Document d;
        const auto& e = entry(h, tok, "oListFanAAAA01", d);
        CHECK(e["unread"].GetUint64() == 2);
        CHECK(str(e["display_name"]) == "顾客AAAA01");
        CHECK(str(e["last_message"]["direction"]) == "in");
        CHECK(str(e["last_message"]["type"]) == "text");
        CHECK(str(e["last_message"]["preview"]).size() < 200);
        CHECK(has(str(e["last_message"]["preview"]), "…"));
        CHECK(e["holder"].IsNull());
        CHECK(e["window"]["open"].GetBool());
        CHECK(e["window"]["remaining"].GetInt() == 5);
        CHECK(e["window"]["closes_at"].IsString());
    }

    // Opening reads the history (and is audited) but clears nothing.
    CHECK(h.call("GET", h.conversation("oListFanAAAA01", "messages"), tok).status == 200);
    CHECK(unread_of(h, tok, "oListFanAAAA01") == 2);

    // A reply clears it for everyone; the holder and the spent slot show.
    auto sent = h.act(tok, "oListFanAAAA01", "send", R"({"text":"您好，请问有什么可以帮您"})");
    REQUIRE(sent.status == 200);
    CHECK(unread_of(h, desk, "oListFanAAAA01") == 0);
    {
        rapidjson::Document d;
        const auto& e = entry(h, desk, "oListFanAAAA01", d);
        CHECK(e["holder"]["id"].GetUint64() == a1);
        CHECK(str(e["holder"]["name"]) == "a1");
        CHECK(str(e["last_message"]["direction"]) == "out");
        CHECK(str(e["last_message"]["preview"]) == "您好，请问有什么可以帮您");
        CHECK(e["window"]["remaining"].GetInt() == 4);
    }

    // The fan writes again: unread again. The front desk ignores it: cleared for everyone, and
    // the consoles online hear of it.
    h.fan_writes("oListFanAAAA01", 51004, "还在吗");
    CHECK(unread_of(h, tok, "oListFanAAAA01") == 1);
    auto ws = h.connect(tok);
    const auto ignored = h.act(desk, "oListFanAAAA01", "ignore-unread");
    CHECK(ignored.status == 200);
    CHECK(ignored.body == R"({"unread":0})");
    CHECK(unread_of(h, tok, "oListFanAAAA01") == 0);
    const auto note = ws->wait_for("\"type\":\"unread\"");
    REQUIRE(note.has_value());
    CHECK(has(*note, "\"openid\":\"oListFanAAAA01\""));
    CHECK(unread_of(h, tok, "oListFanBBBB02") == 1);  // another fan's is untouched

    // Paging by cursor: one at a time, nothing twice, then the end.
    const auto p1 = h.call("GET", "/api/conversations?limit=1", tok);
    const auto d1 = parse(p1);
    REQUIRE(d1["conversations"].Size() == 1);
    REQUIRE(d1["next_cursor"].IsString());
    const std::string first = str(d1["conversations"][0]["openid"]);
    const auto p2 =
        h.call("GET", "/api/conversations?limit=1&cursor=" + str(d1["next_cursor"]), tok);
    const auto d2 = parse(p2);
    REQUIRE(d2["conversations"].Size() == 1);
    CHECK(str(d2["conversations"][0]["openid"]) != first);
    const auto p3 =
        h.call("GET", "/api/conversations?limit=1&cursor=" + str(d2["next_cursor"]), tok);
    const auto d3 = parse(p3);
    CHECK(d3["conversations"].Size() == 0);
    CHECK(d3["next_cursor"].IsNull());

    // Bad input: 400 with a reason for people.
    for (const char* q :
         {"filter=bogus", "limit=0", "limit=101", "cursor=abc", "store=x",
          "q=%E4%B8%80%E4%BA%8C%E4%B8%89%E5%9B%9B%E4%BA%94%E5%85%AD%E4%B8%83%E5%85%AB%E4%B9%9D%E5%"
          "8D%81%E4%B8%80%E4%BA%8C%E4%B8%89%E5%9B%9B%E4%BA%94%E5%85%AD%E4%B8%83%E5%85%AB%E4%B9%9D%"
          "E5%8D%81%E4%B8%80%E4%BA%8C%E4%B8%89%E5%9B%9B%E4%BA%94%E5%85%AD%E4%B8%83%E5%85%AB%E4%B9%"
          "9D%E5%8D%81%E4%B8%80%E4%BA%8C%E4%B8%89"}) {
        CAPTURE(q);
        const auto r = h.call("GET", std::string("/api/conversations?") + q, tok);
        CHECK(r.status == 400);
        CHECK(has(r.body, "\"error\":\""));
    }
    CHECK(http_call(h.port, "GET", "/api/conversations").status == 401);
    CHECK(h.call("POST", h.conversation("oListFanAAAA01", "messages"), tok).status == 405);
    CHECK(h.call("GET", h.conversation("oListFanAAAA01", "ignore-unread"), tok).status == 405);
}

TEST_CASE("search finds fans by patient name and phone and record number and remark and text") {
    clinic_fixture c;
    c.add_agent("a1", password);
    agent_harness h(c);
    const std::string tok = h.token("a1");
    h.fan_writes("oSearchFan001", 52001, "我想预约种植牙");
    h.fan_writes("oSearchFan002", 52002, "你好");
    h.fan_writes("oSearchFan003", 52003, "你好");
    REQUIRE(h.act(tok, "oSearchFan002", "bind-patient",
                  R"({"name":"李小明","phone":"13800138000","record_no":"MR-2027-001"})")
                .status == 200);
    REQUIRE(h.act(tok, "oSearchFan003", "fan", R"({"remark":"王女士 50%"})").status == 200);

    using list = std::vector<std::string>;
    CHECK(listed(h, tok, "q=%E7%A7%8D%E6%A4%8D") == list{"oSearchFan001"});  // 种植
    CHECK(listed(h, tok, "q=%E5%B0%8F%E6%98%8E") == list{"oSearchFan002"});  // 小明
    CHECK(listed(h, tok, "q=138001") == list{"oSearchFan002"});
    CHECK(listed(h, tok, "q=MR-2027") == list{"oSearchFan002"});
    CHECK(listed(h, tok, "q=%E7%8E%8B%E5%A5%B3%E5%A3%AB") == list{"oSearchFan003"});  // 王女士
    // LIKE's wildcards are plain characters in a search.
    CHECK(listed(h, tok, "q=50%25") == list{"oSearchFan003"});
    CHECK(listed(h, tok, "q=%25").size() == 1);
    CHECK(listed(h, tok, "q=_").empty());
    CHECK(listed(h, tok, "q=%E6%B2%A1%E6%9C%89").empty());  // 没有
    // Display names: the remark, else the bound patient's name.
    rapidjson::Document d;
    CHECK(str(entry(h, tok, "oSearchFan002", d)["display_name"]) == "李小明");
    CHECK(str(entry(h, tok, "oSearchFan003", d)["display_name"]) == "王女士 50%");
}

TEST_CASE("filters: mine and waiting and consultant_waiting for the front desk and by store") {
    clinic_fixture c("consultant_mode", "1");
    const auto s1 = c.add_store("东门店");
    const auto a1 = c.add_agent("a1", password);
    const auto con = c.add_agent("顾问", password, true, std::nullopt, true, "consultant");
    c.add_agent("前台", password, true, std::nullopt, true, "front_desk");
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    agent_harness h(c);
    const std::string tok = h.token("a1");
    const std::string desk = h.token("前台");
    const std::string admin = h.token("管理员");

    // Nobody online: every message waits (rule none); the consultant's fan waits on them.
    c.set_fan("oFilterMine01", s1, std::nullopt, a1);
    c.set_fan("oFilterCons01", std::nullopt, con);
    h.fan_writes("oFilterMine01", 53001);
    h.fan_writes("oFilterNone01", 53002);
    h.fan_writes("oFilterCons01", 53003);

    using list = std::vector<std::string>;
    CHECK(listed(h, tok, "filter=mine") == list{"oFilterMine01"});
    const auto waiting = listed(h, tok, "filter=waiting");
    CHECK(std::set<std::string>(waiting.begin(), waiting.end()) ==
          std::set<std::string>{"oFilterMine01", "oFilterNone01"});
    CHECK(listed(h, desk, "filter=consultant_waiting") == list{"oFilterCons01"});
    CHECK(listed(h, admin, "filter=consultant_waiting") == list{"oFilterCons01"});
    const auto refused = h.call("GET", "/api/conversations?filter=consultant_waiting", tok);
    CHECK(refused.status == 403);
    CHECK(has(refused.body, "只有前台和管理员"));
    CHECK(listed(h, tok, "store=" + std::to_string(s1)) == list{"oFilterMine01"});
    CHECK(h.call("GET", "/api/conversations?store=999999999", tok).status == 404);
    CHECK(listed(h, tok).size() == 3);

    // The consultant comes online: the fan no longer waits on an offline consultant.
    const std::string ctok = h.token("顾问");
    auto ws = h.connect(ctok);
    CHECK(listed(h, desk, "filter=consultant_waiting").empty());
    // A reply takes a fan out of the waiting view.
    REQUIRE(h.act(tok, "oFilterNone01", "send", R"({"text":"您好"})").status == 200);
    CHECK(listed(h, tok, "filter=waiting") == list{"oFilterMine01"});
    // Holding a session makes it "mine".
    const auto mine = listed(h, tok, "filter=mine");
    CHECK(std::set<std::string>(mine.begin(), mine.end()) ==
          std::set<std::string>{"oFilterMine01", "oFilterNone01"});
}

TEST_CASE("another clinic's agent sees none of its conversations and opens or changes nothing") {
    clinic_fixture c;
    clinic_fixture other;
    c.add_agent("a1", password);
    other.add_agent("外人", password, true, std::nullopt, true, "admin");
    agent_harness h(c, {other.clinic});
    const std::string tok = h.token("a1");
    const std::string stranger = token_of(h, other.name, "外人");
    h.fan_writes("oIsolatedFan01", 54001, "我的病历");
    const std::string message_id =
        c.value("SELECT MAX(id) FROM inbound_messages WHERE account_id = ?", {c.account});

    CHECK(listed(h, stranger).empty());
    CHECK(listed(h, stranger, "q=%E7%97%85%E5%8E%86").empty());  // 病历
    const std::string base = h.conversation("oIsolatedFan01", "");
    for (const auto& [method, action, body] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"GET", "messages", ""},
             {"GET", "fan", ""},
             {"POST", "fan", R"({"remark":"x"})"},
             {"POST", "ignore-unread", "{}"},
             {"POST", "owner", R"({"exclusive":null})"},
             {"POST", "bind-patient", R"({"name":"x"})"},
             {"POST", "unbind-patient", R"({"patient_id":1})"}}) {
        CAPTURE(method, action);
        const auto r = h.call(method, base + action, stranger, body);
        CHECK(r.status == 404);
        CHECK(r.body == R"({"error":"会话不存在"})");
    }
    CHECK(h.call("GET", "/api/media/" + message_id, stranger).status == 404);
    CHECK(audit_count(c, "conversation.read", std::to_string(c.account) + "/oIsolatedFan01") ==
          "0");
    CHECK(c.value("SELECT COALESCE(remark, 'none') FROM fans WHERE account_id = ?", {c.account}) ==
          "none");
    // Nor its agents.
    const auto agents = h.call("GET", "/api/agents", stranger);
    CHECK(agents.status == 200);
    CHECK_FALSE(has(agents.body, "\"a1\""));
    CHECK(unread_of(h, tok, "oIsolatedFan01") == 1);
}

TEST_CASE("chain-store mode: an agent of a store reads its store's fans and fans without one") {
    clinic_fixture c("chain_store_mode", "1");
    const auto east = c.add_store("东门店");
    const auto west = c.add_store("西门店");
    c.add_agent("东店客服", password, true, east);
    c.add_agent("西店管理员", password, false, west, true, "admin");
    c.add_agent("总部客服", password);
    agent_harness h(c);
    c.set_fan("oStoreEast01", east);
    c.set_fan("oStoreWest01", west);
    h.fan_writes("oStoreEast01", 55001);
    h.fan_writes("oStoreWest01", 55002);
    h.fan_writes("oStoreNone01", 55003);
    const std::string e = h.token("东店客服");
    const std::string admin = h.token("西店管理员");
    const std::string hq = h.token("总部客服");

    const auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    using list = std::vector<std::string>;
    CHECK(sorted(listed(h, e)) == list{"oStoreEast01", "oStoreNone01"});
    CHECK(sorted(listed(h, admin)).size() == 3);
    CHECK(sorted(listed(h, hq)).size() == 3);
    CHECK(listed(h, e, "store=" + std::to_string(east)) == list{"oStoreEast01"});
    CHECK(h.call("GET", "/api/conversations?store=" + std::to_string(west), e).status == 403);
    CHECK(listed(h, admin, "store=" + std::to_string(east)) == list{"oStoreEast01"});
    const auto other_store = h.call("GET", h.conversation("oStoreWest01", "messages"), e);
    CHECK(other_store.status == 403);
    CHECK(other_store.body == R"({"error":"该顾客属于其他门店"})");
    CHECK(h.act(e, "oStoreWest01", "fan", R"({"remark":"x"})").status == 403);
    CHECK(h.call("GET", h.conversation("oStoreWest01", "messages"), admin).status == 200);
    CHECK(h.call("GET", h.conversation("oStoreNone01", "messages"), e).status == 200);
}

TEST_CASE(
    "history: messages with receipts and media and delivery state in pages and every read is "
    "audited") {
    clinic_fixture c;
    const auto a1 = c.add_agent("a1", password);
    agent_harness h(c);
    const std::string tok = h.token("a1");
    const std::string fan = "oHistoryFan001";
    const std::string subject = std::to_string(c.account) + "/" + fan;
    h.fan_writes(fan, 56001, "牙疼三天了");
    REQUIRE(c.deliver(h.port, media_xml(c, fan, 56002, "image",
                                        "<PicUrl><![CDATA[http://mmbiz.example/1.jpg]]></PicUrl>"
                                        "<MediaId><![CDATA[media-img-1]]></MediaId>"))
                .status == 200);
    REQUIRE(c.deliver(h.port, media_xml(c, fan, 56003, "voice",
                                        "<MediaId><![CDATA[media-voice-1]]></MediaId>"
                                        "<Format><![CDATA[amr]]></Format>"
                                        "<Recognition><![CDATA[我想挂号]]></Recognition>"))
                .status == 200);
    REQUIRE(h.act(tok, fan, "send", R"({"text":"请问哪颗牙？"})").status == 200);
    // The outbox worker is not running here: the row's delivery state is set as WeChat's refusal
    // would leave it.
    c.execute(
        "UPDATE outbox SET state = 'failed', last_errcode = 45015, last_error = '回复时间超过限制' "
        "WHERE account_id = ? AND openid = ?",
        {c.account, fan});
    // The image as the media fetcher keeps it.
    const std::string image_id =
        c.value("SELECT message_id FROM inbound_media WHERE account_id = ? AND kind = 'image'",
                {c.account});
    const std::string relative = c.appid + "/" + image_id + ".jpg";
    std::filesystem::create_directories(h.media_dir / c.appid);
    std::ofstream(h.media_dir / relative, std::ios::binary) << "\xFF\xD8\xFF-jpeg-bytes";
    c.execute(
        "UPDATE inbound_media SET state = 'fetched', path = ?, content_type = 'image/jpeg' "
        "WHERE message_id = ?",
        {relative, image_id});

    const auto r = h.call("GET", h.conversation(fan, "messages"), tok);
    REQUIRE(r.status == 200);
    const auto d = parse(r);
    const auto& m = d["messages"];
    REQUIRE(m.Size() == 4);
    // Newest first: the reply, the voice, the image, the text.
    CHECK(str(m[0]["direction"]) == "out");
    CHECK(str(m[0]["text"]) == "请问哪颗牙？");
    CHECK(str(m[0]["state"]) == "failed");
    CHECK(m[0]["errcode"].GetInt() == 45015);
    CHECK(str(m[0]["error"]) == "回复时间超过限制");
    CHECK(m[0]["agent"]["id"].GetUint64() == a1);
    CHECK(str(m[1]["type"]) == "voice");
    CHECK(str(m[1]["text"]) == "我想挂号");
    CHECK(str(m[1]["media"]["state"]) == "pending");
    CHECK(str(m[2]["type"]) == "image");
    CHECK(str(m[2]["media"]["url"]) == "/api/media/" + image_id);
    CHECK(str(m[3]["text"]) == "牙疼三天了");
    CHECK(str(m[3]["routing"]["rule"]) == "none");
    CHECK(m[3]["routing"]["receipt"].IsObject());
    CHECK(d["next_before"].IsNull());

    // The media file, for agents of the clinic only.
    const auto img = h.call("GET", "/api/media/" + image_id, tok);
    CHECK(img.status == 200);
    CHECK(img.header("content-type") == "image/jpeg");
    CHECK(img.body == "\xFF\xD8\xFF-jpeg-bytes");
    CHECK(http_call(h.port, "GET", "/api/media/" + image_id).status == 401);
    CHECK(h.call("GET", "/api/media/999999999999", tok).status == 404);
    CHECK(h.call("GET", "/api/media/abc", tok).status == 404);
    CHECK(audit_count(c, "media.read", subject) == "1");

    // Pages of two: everything once, in order.
    std::vector<std::string> seen;
    std::string before;
    int pages = 0;
    do {
        const auto p = h.call("GET",
                              h.conversation(fan, "messages") + "?limit=2" +
                                  (before.empty() ? "" : "&before=" + before),
                              tok);
        REQUIRE(p.status == 200);
        const auto pd = parse(p);
        for (const auto& e : pd["messages"].GetArray()) {
            seen.push_back(str(e["direction"]) + std::to_string(e["id"].GetUint64()));
        }
        before = pd["next_before"].IsString() ? str(pd["next_before"]) : "";
        ++pages;
    } while (!before.empty() && pages < 10);
    CHECK(pages == 2);
    std::vector<std::string> all;
    for (const auto& e : m.GetArray()) {
        all.push_back(str(e["direction"]) + std::to_string(e["id"].GetUint64()));
    }
    CHECK(seen == all);

    // Every opening and page is in the audit log: 1 + 2 pages.
    CHECK(audit_count(c, "conversation.read", subject) == "3");
    CHECK(c.value("SELECT actor_agent_id FROM audit_log WHERE clinic_id = ? AND action = "
                  "'conversation.read' LIMIT 1",
                  {c.clinic}) == std::to_string(a1));
    for (const char* q : {"?before=x", "?before=0.0", "?limit=0", "?limit=1000"}) {
        CAPTURE(q);
        CHECK(h.call("GET", h.conversation(fan, "messages") + q, tok).status == 400);
    }
    CHECK(audit_count(c, "conversation.read", subject) == "3");
    CHECK(h.call("GET", h.conversation("oNeverWrote01", "messages"), tok).status == 404);
}

TEST_CASE(
    "the fan panel: remark and tags and patients bound and unbound with every change audited") {
    clinic_fixture c;
    clinic_fixture other;
    c.add_agent("a1", password);
    agent_harness h(c);
    const std::string tok = h.token("a1");
    const std::string fan = "oPanelFan0001";
    const std::string subject = std::to_string(c.account) + "/" + fan;
    h.fan_writes(fan, 57001);
    h.fan_writes("oPanelFan0002", 57002);

    auto r = h.act(tok, fan, "fan", R"({"remark":" 王女士 ","tags":["种植","VIP","种植"]})");
    REQUIRE(r.status == 200);
    auto d = parse(r);
    CHECK(str(d["remark"]) == "王女士");
    CHECK(d["tags"].Size() == 2);
    CHECK(str(d["display_name"]) == "王女士");
    CHECK(audit_count(c, "fan.profile", subject) == "1");
    CHECK(has(
        c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'fan.profile'",
                {c.clinic}),
        R"("before":{"remark":null,"tags":[]},"after":{"remark":"王女士","tags":["种植","VIP"]})"));

    // Bad input changes nothing.
    for (const char* body :
         {R"({"tags":"VIP"})",
          R"({"remark":"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三"})",
          R"({"tags":["a\"b"]})", R"({})", "not json"}) {
        CAPTURE(body);
        const auto bad = h.act(tok, fan, "fan", body);
        CHECK(bad.status == 400);
        CHECK(has(bad.body, "\"error\":\""));
    }
    CHECK(c.value("SELECT tags FROM fans WHERE account_id = ? AND openid = ?", {c.account, fan}) ==
          R"(["种植","VIP"])");
    CHECK(audit_count(c, "fan.profile", subject) == "1");

    // Patients: new, then the same record number from another fan reuses the patient.
    r = h.act(tok, fan, "bind-patient",
              R"({"name":"王小红","phone":"139 0000 0000","record_no":"R-1"})");
    REQUIRE(r.status == 200);
    d = parse(r);
    REQUIRE(d["patients"].Size() == 1);
    const auto patient = d["patients"][0]["id"].GetUint64();
    CHECK(str(d["patients"][0]["phone"]) == "139 0000 0000");
    r = h.act(tok, fan, "bind-patient", R"({"name":"王小明"})");
    CHECK(parse(r)["patients"].Size() == 2);
    r = h.act(tok, "oPanelFan0002", "bind-patient", R"({"name":"王小红","record_no":"R-1"})");
    CHECK(parse(r)["patients"][0]["id"].GetUint64() == patient);
    r = h.act(tok, "oPanelFan0002", "bind-patient",
              "{\"patient_id\":" + std::to_string(patient) + "}");
    CHECK(parse(r)["patients"].Size() == 1);  // bound once
    // Another clinic's patient is not ours to bind.
    other.execute("INSERT INTO patients (clinic_id, name) VALUES (?, '外院患者')", {other.clinic});
    const std::string foreign =
        other.value("SELECT id FROM patients WHERE clinic_id = ?", {other.clinic});
    CHECK(h.act(tok, fan, "bind-patient", "{\"patient_id\":" + foreign + "}").status == 404);
    for (const char* body :
         {R"({"name":""})", R"({"name":"x","phone":"abc"})", R"({"patient_id":1,"name":"x"})",
          R"({"name":"x","record_no":"有中文"})"}) {
        CAPTURE(body);
        CHECK(h.act(tok, fan, "bind-patient", body).status == 400);
    }
    CHECK(audit_count(c, "fan.patient_bound", subject) == "2");

    r = h.act(tok, fan, "unbind-patient", "{\"patient_id\":" + std::to_string(patient) + "}");
    CHECK(r.status == 200);
    CHECK(parse(r)["patients"].Size() == 1);
    CHECK(h.act(tok, fan, "unbind-patient", "{\"patient_id\":" + std::to_string(patient) + "}")
              .status == 404);
    CHECK(h.act(tok, fan, "unbind-patient", "{}").status == 400);
    CHECK(audit_count(c, "fan.patient_unbound", subject) == "1");
    const auto panel = h.call("GET", h.conversation(fan, "fan"), tok);
    CHECK(panel.status == 200);
    CHECK(str(parse(panel)["patients"][0]["name"]) == "王小明");
    CHECK(h.act(tok, "oNeverWrote01", "fan", R"({"remark":"x"})").status == 404);
}

TEST_CASE(
    "owners: the front desk and admins set consultant and exclusive agent in MySQL and Redis") {
    clinic_fixture c("exclusive_mode", "1");
    clinic_fixture other;
    const auto a1 = c.add_agent("a1", password);
    const auto a2 = c.add_agent("a2", password);
    const auto con = c.add_agent("顾问", password, true, std::nullopt, true, "consultant");
    const auto gone = c.add_agent("离职", password, true, std::nullopt, false);
    c.add_agent("前台", password, false, std::nullopt, true, "front_desk");
    const auto foreign = other.add_agent("外人", password);
    agent_harness h(c);
    const std::string fan = "oOwnerFan0001";
    const std::string subject = std::to_string(c.account) + "/" + fan;
    c.set_fan(fan);
    const std::string tok = h.token("a1");
    const std::string desk = h.token("前台");

    const auto refused = h.act(tok, fan, "owner", "{\"exclusive\":" + std::to_string(a1) + "}");
    CHECK(refused.status == 403);
    CHECK(has(refused.body, "只有前台和管理员"));

    auto desk_ws = h.connect(desk);
    const auto set = h.act(
        desk, fan, "owner",
        "{\"exclusive\":" + std::to_string(a2) + ",\"consultant\":" + std::to_string(con) + "}");
    INFO(set.body);
    REQUIRE(set.status == 200);
    const auto d = parse(set);
    CHECK(d["exclusive"]["id"].GetUint64() == a2);
    CHECK(str(d["consultant"]["name"]) == "顾问");
    CHECK(c.value("SELECT exclusive_agent_id FROM fans WHERE account_id = ? AND openid = ?",
                  {c.account, fan}) == std::to_string(a2));
    const auto live_exclusive = h.sync(h.live->exclusive_agent(c.clinic, fan));
    REQUIRE(live_exclusive.has_value());
    CHECK(*live_exclusive == std::optional<std::string>(std::to_string(a2)));
    CHECK(has(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'fan.owner'",
                      {c.clinic}),
              "\"before\":{\"consultant\":null,\"exclusive\":null},\"after\":{\"consultant\":" +
                  std::to_string(con) + ",\"exclusive\":" + std::to_string(a2) + "}"));
    CHECK(desk_ws->wait_for("\"type\":\"owner\"").has_value());

    // Routing reads it: with a2 online, exclusive mode sends the fan's message to a2 alone.
    c.execute("UPDATE fans SET consultant_agent_id = NULL WHERE account_id = ?", {c.account});
    auto ws1 = h.connect(tok);
    auto ws2 = h.connect(h.token("a2"));
    h.fan_writes(fan, 58001, "找我的专属客服");
    CHECK(ws2->wait_for("\"openid\":\"" + fan + "\"").has_value());

    // Refusals change nothing, in MySQL or in Redis.
    for (const auto& [body, status] : std::vector<std::pair<std::string, int>>{
             {"{\"exclusive\":" + std::to_string(gone) + "}", 422},
             {"{\"exclusive\":" + std::to_string(foreign) + "}", 404},
             {"{\"consultant\":\"x\"}", 400},
             {"{}", 400}}) {
        CAPTURE(body);
        CHECK(h.act(desk, fan, "owner", body).status == status);
    }
    CHECK(*h.sync(h.live->exclusive_agent(c.clinic, fan)) ==
          std::optional<std::string>(std::to_string(a2)));
    CHECK(audit_count(c, "fan.owner", subject) == "1");

    // Cleared: in both places.
    const auto cleared = h.act(desk, fan, "owner", R"({"exclusive":null})");
    CHECK(cleared.status == 200);
    CHECK(parse(cleared)["exclusive"].IsNull());
    CHECK(*h.sync(h.live->exclusive_agent(c.clinic, fan)) == std::nullopt);
    CHECK(c.value("SELECT COALESCE(exclusive_agent_id, 0) FROM fans WHERE account_id = ? AND "
                  "openid = ?",
                  {c.account, fan}) == "0");
    CHECK(has(
        c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'fan.owner' "
                "ORDER BY id DESC LIMIT 1",
                {c.clinic}),
        "\"before\":{\"exclusive\":" + std::to_string(a2) + "},\"after\":{\"exclusive\":null}"));
    (void)ws1;
}

TEST_CASE("the agents view lists the clinic's active agents by store with their presence") {
    clinic_fixture c;
    clinic_fixture other;
    const auto s = c.add_store("东门店");
    const auto a1 = c.add_agent("a1", password, true, s);
    c.add_agent("顾问", password, true, std::nullopt, true, "consultant");
    c.add_agent("离职", password, true, std::nullopt, false);
    other.add_agent("外人", password);
    agent_harness h(c);
    const std::string tok = h.token("a1");
    auto ws = h.connect(tok);
    const auto r = h.call("GET", "/api/agents", tok);
    REQUIRE(r.status == 200);
    const auto d = parse(r);
    REQUIRE(d["stores"].Size() == 1);
    CHECK(str(d["stores"][0]["name"]) == "东门店");
    REQUIRE(d["agents"].Size() == 2);
    CHECK(d["agents"][0]["id"].GetUint64() == a1);
    CHECK(d["agents"][0]["store_id"].GetUint64() == s);
    CHECK(d["agents"][0]["online"].GetBool());
    CHECK(str(d["agents"][1]["name"]) == "顾问");
    CHECK_FALSE(d["agents"][1]["online"].GetBool());
    CHECK_FALSE(has(r.body, "外人"));
    CHECK_FALSE(has(r.body, "离职"));
    CHECK_FALSE(has(r.body, "password"));
    CHECK(http_call(h.port, "GET", "/api/agents").status == 401);
}

TEST_CASE("an agent changes its own password after giving the old one") {
    clinic_fixture c;
    c.add_agent("a1", password);
    agent_harness h(c);
    const std::string tok = h.token("a1");
    const std::string other_tab = h.token("a1");  // signed in elsewhere with the old password
    const std::string fresh = "new-password-2027";

    for (const char* body : {R"({"old_password":"x"})",
                             R"({"old_password":"x","new_password":"short"})", "not json"}) {
        CAPTURE(body);
        CHECK(h.call("POST", "/api/agent/password", tok, body).status == 400);
    }
    const auto same = h.call("POST", "/api/agent/password", tok,
                             "{\"old_password\":" + json_quote(password) +
                                 ",\"new_password\":" + json_quote(password) + "}");
    CHECK(same.status == 400);
    const auto wrong = h.call("POST", "/api/agent/password", tok,
                              R"({"old_password":"wrong-one","new_password":"whatever-123"})");
    CHECK(wrong.status == 403);
    CHECK(wrong.body == R"({"error":"原密码不正确"})");
    CHECK(h.sign_in("a1", password).status == 200);  // unchanged (and the failure count cleared)

    const auto ok = h.call("POST", "/api/agent/password", tok,
                           "{\"old_password\":" + json_quote(password) +
                               ",\"new_password\":" + json_quote(fresh) + "}");
    CHECK(ok.status == 200);
    // The other session ended with the old password; the one that changed it goes on.
    CHECK(h.call("GET", "/api/agent/me", other_tab).status == 401);
    CHECK(h.call("GET", "/api/agent/me", tok).status == 200);
    CHECK(h.sign_in("a1", password).status == 401);
    CHECK(h.sign_in("a1", fresh).status == 200);
    CHECK(
        c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = 'agent.password'",
                {c.clinic}) == "1");
    CHECK_FALSE(
        has(c.value("SELECT password_hash FROM agents WHERE clinic_id = ?", {c.clinic}), fresh));

    // Wrong old passwords count towards the sign-in lockout (3 here).
    for (int i = 0; i < 2; ++i) {
        CHECK(h.call("POST", "/api/agent/password", tok,
                     R"({"old_password":"wrong-one","new_password":"whatever-123"})")
                  .status == 403);
    }
    CHECK(h.call("POST", "/api/agent/password", tok,
                 R"({"old_password":"wrong-one","new_password":"whatever-123"})")
              .status == 429);
    CHECK(h.sign_in("a1", fresh).status == 429);
}

TEST_CASE("consoles hear of lock changes and of replies that clear the unread mark") {
    clinic_fixture c;
    const auto a1 = c.add_agent("a1", password);
    c.add_agent("前台", password, true, std::nullopt, true, "front_desk");
    agent_harness h(c);
    const std::string tok = h.token("a1");
    auto desk = h.connect(h.token("前台"));
    h.fan_writes("oPushFan00001", 59001);

    REQUIRE(h.act(tok, "oPushFan00001", "accept").status == 200);
    const auto taken = desk->wait_for("\"type\":\"lock\"");
    REQUIRE(taken.has_value());
    CHECK(has(*taken, "\"holder\":{\"id\":" + std::to_string(a1) + ",\"name\":\"a1\"}"));
    REQUIRE(h.act(tok, "oPushFan00001", "send", R"({"text":"您好"})").status == 200);
    const auto cleared = desk->wait_for("\"type\":\"unread\"");
    REQUIRE(cleared.has_value());
    CHECK(has(*cleared, "\"openid\":\"oPushFan00001\""));
    REQUIRE(h.act(tok, "oPushFan00001", "end").status == 200);
    const auto ended = desk->wait_for("\"holder\":null");
    REQUIRE(ended.has_value());
    CHECK(has(*ended, "\"type\":\"lock\""));
}
