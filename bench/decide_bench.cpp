// decide() for a 30-agent clinic (6 stores of 5 agents, 2/3 online, working hours with a split
// shift and closed dates), in the rule mixes a clinic sees, with and without the receipt. The
// baseline, measured in the same run, is copying the snapshot: what the shell does anyway per
// message. Run: build/bin/scrm-bench-decide (Google Benchmark flags apply).
#include <benchmark/benchmark.h>

#include "scrm/routing/decide.hpp"

namespace {

using namespace std::chrono;
namespace rt = scrm::routing;

rt::snapshot clinic(bool exclusive, bool chain) {
    rt::snapshot s;
    s.now = sys_days{year{2026} / 12 / 2} + hours{2} + minutes{30};  // 10:30 at +08:00, Wednesday
    s.config.exclusive_mode = exclusive;
    s.config.chain_store_mode = chain;
    s.config.utc_offset = minutes{480};
    s.config.work_hours = {{{1, 2, 3, 4, 5}, hours{9}, hours{12}},
                           {{1, 2, 3, 4, 5}, hours{14}, hours{18}},
                           {{6}, hours{9}, hours{13}}};
    s.config.closed_dates = {year{2026} / 10 / 1, year{2027} / 1 / 1};
    for (int i = 0; i < 30; ++i) {
        rt::agent_state a;
        a.id = "agent" + std::to_string(100 + i);
        a.store = "store" + std::to_string(i / 5);
        a.online = i % 3 != 0;
        a.can_receive = i % 7 != 0;
        a.load = (i * 7) % 5;
        a.last_assigned = 1'790'000'000 + (i * 13) % 30;
        s.agents.push_back(a);
    }
    s.fan.openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
    if (chain) s.fan.store = "store3";
    return s;
}

struct scenario {
    const char* name;
    rt::snapshot s;
};

std::vector<scenario> scenarios() {
    std::vector<scenario> out;
    out.push_back({"shared", clinic(false, false)});
    out.push_back({"exclusive_pick", clinic(true, false)});
    out.push_back({"chain_store_pick", clinic(true, true)});
    auto consultant = clinic(false, false);
    consultant.config.consultant_mode = true;
    consultant.fan.consultant = "agent103";  // offline: the consultant-offline prompt
    out.push_back({"consultant_offline", consultant});
    return out;
}

void decide_bench(benchmark::State& state, rt::snapshot s, rt::with_receipt r) {
    rt::decision out;
    for (auto _ : state) {
        rt::decide(s, out, r);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}

void copy_baseline(benchmark::State& state, rt::snapshot s) {
    for (auto _ : state) {
        rt::snapshot copy = s;
        benchmark::DoNotOptimize(copy);
    }
    state.SetItemsProcessed(state.iterations());
}

const bool registered = [] {
    for (auto& sc : scenarios()) {
        benchmark::RegisterBenchmark((std::string("decide/") + sc.name).c_str(), decide_bench,
                                     sc.s, rt::with_receipt::no);
        benchmark::RegisterBenchmark((std::string("decide_receipt/") + sc.name).c_str(),
                                     decide_bench, sc.s, rt::with_receipt::yes);
    }
    benchmark::RegisterBenchmark("baseline/copy_snapshot", copy_baseline, clinic(true, true));
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
