// The catalog's data (catalog.hpp). Field names are the integration API's (docs/integration.md).
#include "scrm/templates/catalog.hpp"

#include <algorithm>
#include <iterator>

namespace scrm::templates {
namespace {

constexpr field_info builtins[] = {
    {"patient_name", "患者姓名", false},
    {"clinic_name", "诊所名称", false},
};

constexpr field_info appointment_created[] = {
    {"appointment_time", "预约时间", true},
    {"doctor", "医生", false},
    {"store", "门店", false},
    {"item", "预约项目", false},
    {"appointment_id", "预约编号", false},
};
constexpr field_info appointment_changed[] = {
    {"appointment_time", "新的预约时间", true},
    {"previous_time", "原预约时间", false},
    {"doctor", "医生", false},
    {"store", "门店", false},
    {"item", "预约项目", false},
    {"appointment_id", "预约编号", false},
};
constexpr field_info appointment_cancelled[] = {
    {"appointment_time", "预约时间", true},
    {"doctor", "医生", false},
    {"store", "门店", false},
    {"item", "预约项目", false},
    {"reason", "取消原因", false},
    {"appointment_id", "预约编号", false},
};
constexpr field_info visit_confirmation[] = {
    {"appointment_time", "就诊时间", true},
    {"doctor", "医生", false},
    {"store", "门店", false},
    {"item", "就诊项目", false},
    {"appointment_id", "预约编号", false},
};
constexpr field_info electronic_bill[] = {
    {"amount", "金额", true},    {"bill_time", "收费时间", true}, {"bill_no", "账单编号", false},
    {"item", "收费项目", false}, {"store", "门店", false},
};
constexpr field_info medical_record[] = {
    {"visit_time", "就诊时间", true},
    {"doctor", "医生", false},
    {"store", "门店", false},
    {"record_id", "病历编号", false},
};
constexpr field_info patient_bound[] = {
    {"bound_time", "绑定时间", true},
    {"phone", "绑定手机号", false},
};
constexpr field_info patient_unbound[] = {
    {"unbound_time", "解绑时间", true},
    {"phone", "原绑定手机号", false},
};
constexpr field_info points_changed[] = {
    {"points_change", "积分变动", true},
    {"points_balance", "积分余额", true},
    {"change_time", "变动时间", false},
    {"reason", "变动原因", false},
};
constexpr field_info coupon_received[] = {
    {"coupon_name", "电子券名称", true},
    {"coupon_count", "数量", false},
    {"expires_at", "有效期至", false},
};
constexpr field_info evaluation_invitation[] = {
    {"visit_time", "就诊时间", true},
    {"doctor", "医生", false},
    {"store", "门店", false},
    // The clinic system's visit id: one evaluation per visit (the idempotency key when absent).
    {"visit_id", "就诊编号", false},
};
constexpr field_info referral_succeeded[] = {
    {"referred_name", "被推荐人", true},
    {"referral_time", "推荐时间", true},
    {"reward", "奖励", false},
};
constexpr field_info reply_waiting[] = {
    {"reply_time", "回复时间", true},
    {"agent_name", "回复人", false},
};

constexpr kind_info kinds[] = {
    {"appointment_created", "预约创建提醒", appointment_created},
    {"appointment_changed", "预约修改提醒", appointment_changed},
    {"appointment_cancelled", "预约取消提醒", appointment_cancelled},
    {"visit_confirmation", "就诊前确认提醒", visit_confirmation},
    {"electronic_bill", "微信电子账单提醒", electronic_bill},
    {"medical_record", "电子病历推送", medical_record},
    {"patient_bound", "客户绑定通知", patient_bound},
    {"patient_unbound", "客户解绑通知", patient_unbound},
    {"points_changed", "积分变动提醒", points_changed},
    {"coupon_received", "电子券到账提醒", coupon_received},
    {"evaluation_invitation", "服务评价提示", evaluation_invitation},
    {"referral_succeeded", "推荐会员成功提醒", referral_succeeded},
    {"reply_waiting", "客服回复提醒", reply_waiting},
};

const field_info* find_in(std::span<const field_info> fields, std::string_view name) noexcept {
    auto it = std::find_if(fields.begin(), fields.end(),
                           [name](const field_info& f) { return f.name == name; });
    return it == fields.end() ? nullptr : &*it;
}

}  // namespace

std::span<const field_info> builtin_fields() noexcept {
    return builtins;
}

std::span<const kind_info> catalog() noexcept {
    return kinds;
}

const kind_info* find_kind(std::string_view name) noexcept {
    auto it = std::find_if(std::begin(kinds), std::end(kinds),
                           [name](const kind_info& k) { return k.name == name; });
    return it == std::end(kinds) ? nullptr : &*it;
}

const field_info* find_field(const kind_info& kind, std::string_view name) noexcept {
    if (const auto* f = find_in(kind.fields, name)) return f;
    return find_in(builtins, name);
}

bool is_builtin_field(std::string_view name) noexcept {
    return find_in(builtins, name) != nullptr;
}

}  // namespace scrm::templates
