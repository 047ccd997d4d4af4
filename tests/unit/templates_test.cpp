// The templates core without servers: the catalog, settings' validation (every rule refuses what
// it should and accepts what it should), the stored keyword form, truncation as WeChat does it,
// rendering into the template/send body, and integration events.
#include <catch2/catch.hpp>

#include "scrm/templates/catalog.hpp"
#include "scrm/templates/event.hpp"
#include "scrm/templates/setting.hpp"

using namespace scrm::templates;

namespace {

template_setting good() {
    template_setting s;
    s.kind = "appointment_created";
    s.template_id = "Tpl_abc-123";
    s.keywords = {{"time1", "{{appointment_time}}"},
                  {"thing2", "{{doctor}} {{store}}"},
                  {"name3", "{{patient_name}}"}};
    s.url = "https://clinic.example/appt?id={{appointment_id}}";
    return s;
}

// The `field` of each problem, in order.
std::vector<std::string> fields_of(const std::vector<problem>& ps) {
    std::vector<std::string> out;
    for (const auto& p : ps) out.push_back(p.field);
    return out;
}

}  // namespace

TEST_CASE("the catalog has the seed's kinds and reply_waiting") {
    const std::vector<std::string> expected = {
        "appointment_created", "appointment_changed", "appointment_cancelled", "visit_confirmation",
        "electronic_bill",     "medical_record",      "patient_bound",         "patient_unbound",
        "points_changed",      "coupon_received",     "evaluation_invitation", "referral_succeeded",
        "reply_waiting"};
    std::vector<std::string> names;
    for (const auto& k : catalog()) {
        names.emplace_back(k.name);
        CAPTURE(k.name);
        CHECK(!k.label.empty());
        CHECK(!k.fields.empty());
        CHECK(find_kind(k.name) == &k);
        bool any_required = false;
        for (const auto& f : k.fields) any_required = any_required || f.required;
        CHECK(any_required);
    }
    CHECK(names == expected);
    CHECK(find_kind("nope") == nullptr);
    const auto* k = find_kind("electronic_bill");
    REQUIRE(k != nullptr);
    CHECK(find_field(*k, "amount") != nullptr);
    CHECK(find_field(*k, "patient_name") != nullptr);  // built-in
    CHECK(find_field(*k, "doctor") == nullptr);
    CHECK(is_builtin_field("clinic_name"));
    CHECK_FALSE(is_builtin_field("amount"));
}

TEST_CASE("a good setting validates") {
    CHECK(validate(good()).empty());
    auto mp = good();
    mp.url.clear();
    mp.mp_appid = "wx0123456789abcdef";
    mp.mp_page = "pages/appt/index?id={{appointment_id}}";
    CHECK(validate(mp).empty());
}

TEST_CASE("settings are refused with the part that is wrong") {
    struct row {
        std::string name;
        std::function<void(template_setting&)> change;
        std::vector<std::string> fields;
    };
    auto r = GENERATE(values<row>({
        {"unknown kind", [](auto& s) { s.kind = "birthday"; }, {"kind"}},
        {"empty template id", [](auto& s) { s.template_id.clear(); }, {"template_id"}},
        {"template id with a space", [](auto& s) { s.template_id = "a b"; }, {"template_id"}},
        {"no keywords", [](auto& s) { s.keywords.clear(); }, {"keywords"}},
        {"first is refused",
         [](auto& s) { s.keywords[0].keyword = "first"; },
         {"keywords[0].keyword"}},
        {"remark is refused",
         [](auto& s) {
             s.keywords.push_back({"remark", "x"});
         },
         {"keywords[3].keyword"}},
        {"unknown keyword type",
         [](auto& s) { s.keywords[0].keyword = "thingy1"; },
         {"keywords[0].keyword"}},
        {"keyword without number",
         [](auto& s) { s.keywords[0].keyword = "thing"; },
         {"keywords[0].keyword"}},
        {"keyword number 0",
         [](auto& s) { s.keywords[0].keyword = "thing0"; },
         {"keywords[0].keyword"}},
        {"keyword twice",
         [](auto& s) { s.keywords[1].keyword = "time1"; },
         {"keywords[1].keyword"}},
        {"empty value", [](auto& s) { s.keywords[0].value.clear(); }, {"keywords[0].value"}},
        {"control character", [](auto& s) { s.keywords[0].value = "a\nb"; }, {"keywords[0].value"}},
        {"value template too long",
         [](auto& s) { s.keywords[0].value = std::string(65, 'x'); },
         {"keywords[0].value"}},
        {"placeholder not of the kind",
         [](auto& s) { s.keywords[1].value = "{{amount}}"; },
         {"keywords[1].value"}},
        {"fixed text longer than WeChat keeps",
         [](auto& s) { s.keywords[1].value = "您的预约已经成功提交请准时到达诊所就诊谢谢合作呀"; },
         {"keywords[1].value"}},
        {"url scheme", [](auto& s) { s.url = "ftp://x"; }, {"url"}},
        {"url with space", [](auto& s) { s.url = "https://a b"; }, {"url"}},
        {"url placeholder", [](auto& s) { s.url = "https://a/{{nope}}"; }, {"url"}},
        {"appid without page", [](auto& s) { s.mp_appid = "wx0123456789abcdef"; }, {"miniprogram"}},
        {"bad appid",
         [](auto& s) {
             s.mp_appid = "wx0123";
             s.mp_page = "p";
         },
         {"mp_appid"}},
        {"eleven keywords",
         [](auto& s) {
             s.keywords.clear();
             for (int i = 1; i <= 11; ++i) s.keywords.push_back({"thing" + std::to_string(i), "x"});
         },
         {"keywords"}},
    }));
    CAPTURE(r.name);
    auto s = good();
    r.change(s);
    const auto ps = validate(s);
    auto got = fields_of(ps);
    auto want = r.fields;
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    CHECK(got == want);
    for (const auto& p : ps) {
        CHECK(!p.en.empty());
        CHECK(!p.zh.empty());
    }
}

TEST_CASE("keywords round-trip through their stored form") {
    const auto s = good();
    const auto text = keywords_json(s.keywords);
    CHECK(
        text ==
        R"([{"keyword":"time1","value":"{{appointment_time}}"},{"keyword":"thing2","value":"{{doctor}} {{store}}"},{"keyword":"name3","value":"{{patient_name}}"}])");
    CHECK(parse_keywords_json(text) == std::optional(s.keywords));
    const auto obj = parse_keywords_json(R"({"time1":"{{appointment_time}}","thing2":"x"})");
    REQUIRE(obj.has_value());
    CHECK(*obj == std::vector<keyword_mapping>{{"time1", "{{appointment_time}}"}, {"thing2", "x"}});
    CHECK_FALSE(parse_keywords_json("[1]").has_value());
    CHECK_FALSE(parse_keywords_json(R"({"a":1})").has_value());
    CHECK_FALSE(parse_keywords_json("nope").has_value());
}

TEST_CASE("values are cut as WeChat cuts them, by characters") {
    struct row {
        std::string keyword, value, expected;
    };
    auto r = GENERATE(values<row>({
        {"thing1", std::string(20, 'a'), std::string(20, 'a')},
        {"thing1", std::string(21, 'a'), std::string(17, 'a') + "..."},
        {"thing1", "一二三四五六七八九十一二三四五六七八九十一",
         "一二三四五六七八九十一二三四五六七..."},
        {"character_string2", std::string(33, '9'), std::string(29, '9') + "..."},
        {"phone_number3", std::string(18, '1'), std::string(14, '1') + "..."},
        {"car_number4", "粤B1234567", "粤B123..."},
        {"const5", std::string(21, 'c'), std::string(17, 'c') + "..."},
        {"time6", std::string(40, 't'), std::string(40, 't')},
        {"amount7", std::string(40, '1'), std::string(40, '1')},
    }));
    CAPTURE(r.keyword, r.value);
    CHECK(truncate_value(r.keyword, r.value) == r.expected);
}

TEST_CASE("rendering fills the mapping and builds WeChat's body") {
    field_values v{{"appointment_time", "2026-11-23 10:00"},
                   {"doctor", "王医生"},
                   {"store", "东门店"},
                   {"appointment_id", "A 1/2"},
                   {"patient_name", "张三"}};
    const auto m = render(good(), v, "oFan", "scrm_e1_0");
    CHECK(m.touser == "oFan");
    CHECK(m.template_id == "Tpl_abc-123");
    CHECK(m.client_msg_id == "scrm_e1_0");
    CHECK(m.url == "https://clinic.example/appt?id=A%201%2F2");
    REQUIRE(m.data.size() == 3);
    CHECK(m.data[0] == scrm::wechat::template_keyword{"time1", "2026-11-23 10:00", ""});
    CHECK(m.data[1] == scrm::wechat::template_keyword{"thing2", "王医生 东门店", ""});
    CHECK(m.data[2] == scrm::wechat::template_keyword{"name3", "张三", ""});
    CHECK(scrm::wechat::template_send_body(m) ==
          R"({"touser":"oFan","template_id":"Tpl_abc-123","client_msg_id":"scrm_e1_0",)"
          R"("url":"https://clinic.example/appt?id=A%201%2F2","data":{"time1":{"value":)"
          R"("2026-11-23 10:00"},"thing2":{"value":"王医生 东门店"},"name3":{"value":"张三"}}})");

    // An absent optional field leaves no stray spaces; a keyword left empty becomes "-".
    field_values few{{"appointment_time", "明天"}};
    const auto m2 = render(good(), few, "oFan", "");
    CHECK(m2.data[1].value == "-");
    CHECK(m2.data[2].value == "-");
    CHECK(m2.url == "https://clinic.example/appt?id=");

    auto mp = good();
    mp.mp_appid = "wx0123456789abcdef";
    mp.mp_page = "pages/a?id={{appointment_id}}";
    const auto m3 = render(mp, v, "oFan", "");
    REQUIRE(m3.miniprogram.has_value());
    CHECK(m3.miniprogram->pagepath == "pages/a?id=A%201%2F2");
}

TEST_CASE("used_fields lists each placeholder once") {
    CHECK(used_fields(good()) == std::vector<std::string>{"appointment_time", "doctor", "store",
                                                          "patient_name", "appointment_id"});
}

TEST_CASE("events parse into values") {
    const auto p = parse_event(
        R"({"kind":"appointment_created","idempotency_key":"pms-1:42","patient":{"record_no":"R1"},)"
        R"("data":{"appointment_time":"2026-11-23 10:00","doctor":"王医生","appointment_id":77}})");
    REQUIRE(p.event.has_value());
    CHECK(p.event->kind == find_kind("appointment_created"));
    CHECK(p.event->idempotency_key == "pms-1:42");
    CHECK(p.event->patient == patient_ref{"R1", ""});
    CHECK(p.event->data.at("appointment_id") == "77");
    CHECK(p.event->data.at("doctor") == "王医生");

    // The same event in another order and spacing has the same canonical form.
    const auto q = parse_event(
        R"({ "data": {"appointment_id":77, "doctor":"王医生", "appointment_time":"2026-11-23 10:00"},)"
        R"( "patient": {"record_no":"R1"}, "idempotency_key":"other", "kind":"appointment_created" })");
    REQUIRE(q.event.has_value());
    CHECK(canonical(*p.event) == canonical(*q.event));
    auto changed = *q.event;
    changed.data["doctor"] = "李医生";
    CHECK(canonical(*p.event) != canonical(changed));
}

TEST_CASE("bad events are refused with the field at fault") {
    struct row {
        std::string name, body, field;
    };
    const std::string ok_patient = R"("patient":{"record_no":"R1"})";
    const std::string ok_data = R"("data":{"appointment_time":"t"})";
    const std::string head = R"({"kind":"appointment_created","idempotency_key":"k1",)";
    auto r = GENERATE_COPY(values<row>({
        {"not json", "nope", ""},
        {"array", "[]", ""},
        {"invalid utf-8", head + ok_patient + ",\"data\":{\"appointment_time\":\"\xff\"}}", ""},
        {"unknown member", head + ok_patient + "," + ok_data + R"(,"x":1})", "x"},
        {"no kind", R"({"idempotency_key":"k1",)" + ok_patient + "}", "kind"},
        {"unknown kind", R"({"kind":"x","idempotency_key":"k1",)" + ok_patient + "}", "kind"},
        {"no key", R"({"kind":"appointment_created",)" + ok_patient + "}", "idempotency_key"},
        {"key with space",
         R"({"kind":"appointment_created","idempotency_key":"a b",)" + ok_patient + "}",
         "idempotency_key"},
        {"key too long",
         R"({"kind":"appointment_created","idempotency_key":")" + std::string(129, 'k') + "\"," +
             ok_patient + "}",
         "idempotency_key"},
        {"no patient", head + ok_data + "}", "patient"},
        {"empty patient", head + R"("patient":{},)" + ok_data + "}", "patient"},
        {"bad phone", head + R"("patient":{"phone":"abc"},)" + ok_data + "}", "patient.phone"},
        {"patient extra", head + R"("patient":{"name":"x"},)" + ok_data + "}", "patient.name"},
        {"data not object", head + ok_patient + R"(,"data":[]})", "data"},
        {"field of another kind",
         head + ok_patient + R"(,"data":{"appointment_time":"t","amount":"1"}})", "data.amount"},
        {"built-in field",
         head + ok_patient + R"(,"data":{"appointment_time":"t","patient_name":"x"}})",
         "data.patient_name"},
        {"field not text", head + ok_patient + R"(,"data":{"appointment_time":true}})",
         "data.appointment_time"},
        {"field too long",
         head + ok_patient + R"(,"data":{"appointment_time":")" + std::string(201, 'x') + "\"}}",
         "data.appointment_time"},
        {"required missing", head + ok_patient + "}", "data.appointment_time"},
        {"required blank", head + ok_patient + R"(,"data":{"appointment_time":"  "}})",
         "data.appointment_time"},
    }));
    CAPTURE(r.name, r.body);
    const auto p = parse_event(r.body);
    CHECK_FALSE(p.event.has_value());
    REQUIRE(p.error.has_value());
    CHECK(p.error->field == r.field);
    CHECK(!p.error->zh.empty());
}
