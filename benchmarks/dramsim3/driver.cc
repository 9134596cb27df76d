// Trace driver for DRAMsim3 (our code, linked against libdramsim3 built from umd-memsys/DRAMsim3).
// Same front end as hw.memory: requests enter in trace order at the end of their cycle, as many per cycle
// as the controller accepts; a refused request blocks those behind it. Runs until every request has
// called back, prints one JSON line: completion cycle, mean read latency (callback cycle - cycle the
// controller accepted the read, as DRAMsim3's own read_latency stat), and the wall time of the loop.
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>
#include "memory_system.h"

int main(int argc, char** argv) {
    if (argc < 4) { std::cerr << "usage: driver CONFIG.ini TRACE OUTDIR\n"; return 2; }
    std::ifstream f(argv[2]);
    std::vector<uint64_t> addr, cyc; std::vector<char> wr;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream is(line); std::string a, op; uint64_t c;
        is >> a >> op >> c;
        addr.push_back(std::stoull(a, nullptr, 16)); wr.push_back(op == "WRITE"); cyc.push_back(c);
    }
    size_t n = addr.size();
    uint64_t clk = 0, last_done = 0, done = 0;
    std::unordered_map<uint64_t, std::deque<uint64_t>> rd_added, wr_added;  // addr -> accept cycles
    double lat_sum = 0; uint64_t nrd = 0;
    // DRAMsim3 calls back once per read, merged ones included (num_reads_done counts them all): one accept
    // cycle per callback, oldest first. (Popping every outstanding read of the address at the first
    // callback mis-timed a re-read accepted while an earlier read of that address was in flight.)
    auto rcb = [&](uint64_t a) {
        auto& q = rd_added[a];
        if (!q.empty()) { lat_sum += double(clk - q.front()); q.pop_front(); nrd++; done++; }
        last_done = clk;
    };
    auto wcb = [&](uint64_t a) {
        auto& q = wr_added[a];
        if (!q.empty()) { q.pop_front(); done++; }
        last_done = clk;
    };
    dramsim3::MemorySystem mem(argv[1], argv[3], rcb, wcb);
    size_t nxt = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (done < n) {
        mem.ClockTick();   // callbacks of cycle clk, then the controllers' tick clk
        clk++;             // the controllers' clock after their tick: the requests' accept cycle
        while (nxt < n && cyc[nxt] <= clk - 1) {
            if (!mem.WillAcceptTransaction(addr[nxt], wr[nxt])) break;
            mem.AddTransaction(addr[nxt], wr[nxt]);
            (wr[nxt] ? wr_added : rd_added)[addr[nxt]].push_back(clk);
            nxt++;
        }
        if (clk > 4000000000ULL) { std::cerr << "no progress\n"; return 1; }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    mem.PrintStats();
    printf("{\"completion_cycles\": %llu, \"mean_read_latency_cycles\": %.6f, \"reads\": %llu, \"requests\": %zu, "
           "\"wall_s\": %.6f}\n", (unsigned long long)last_done, nrd ? lat_sum / nrd : 0.0,
           (unsigned long long)nrd, n, wall);
    return 0;
}
