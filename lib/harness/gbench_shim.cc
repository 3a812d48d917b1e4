// The Google Benchmark back-end: the only C++ in pagelab. Each selected
// instance is warmed up and given its iteration count by the calibration
// both back-ends share (the library's growth rule, but within a wall-time
// budget and the benchmark's max_iterations, which the library cannot see:
// set-up outside the timed part can dwarf it), then registered alone with
// the library, which times and repeats it; every run goes to the common C
// reporter, which writes the JSON. With random interleaving all instances
// are registered at once and the library calibrates them itself.
#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_impl.h"

namespace {

benchmark::State *gb(pb_state *s)
{
	return static_cast<benchmark::State *>(s->backend);
}

// The whole run is handed out as one batch; pb_keep_running counts it down
// itself, so an iteration costs the same in both back-ends.
void gb_start(pb_state *s)
{
	benchmark::State *st = gb(s);
	s->max_iter = st->KeepRunningBatch(st->max_iterations) ? st->max_iterations : 0;
}

void gb_stop(pb_state *s)
{
	// The batch is spent: this call stops the timer and ends the run.
	while (gb(s)->KeepRunning()) {
	}
}

void gb_pause(pb_state *s) { gb(s)->PauseTiming(); }
void gb_resume(pb_state *s) { gb(s)->ResumeTiming(); }
void gb_iteration_time(pb_state *s, double seconds) { gb(s)->SetIterationTime(seconds); }
void gb_skip(pb_state *s, const char *msg) { gb(s)->SkipWithError(msg); }

const pb_backend_ops gb_ops = {gb_start, gb_stop, gb_pause, gb_resume, gb_iteration_time, gb_skip};

benchmark::Counter::Flags counter_flags(pb_counter_kind kind)
{
	switch (kind) {
	case PB_COUNTER_AVG_ITER: return benchmark::Counter::kAvgIterations;
	case PB_COUNTER_RATE: return benchmark::Counter::kIsRate;
	default: return benchmark::Counter::kDefaults;
	}
}

// What the benchmark reported goes into the library's counters, which sums
// them over threads and divides them as the C reporter expects.
void publish(benchmark::State &st, const pb_state &s)
{
	for (int i = 0; i < pl_counters_count(); i++)
		st.counters[pl_counters_name(i)] = benchmark::Counter(s.ctr_total[i], benchmark::Counter::kAvgIterations);
	for (int i = 0; i < s.ncustom; i++)
		st.counters[s.custom[i].name] = benchmark::Counter(s.custom[i].value, counter_flags(s.custom[i].kind));
	if (s.has_items)
		st.SetItemsProcessed(s.items);
	if (s.has_bytes)
		st.SetBytesProcessed(s.bytes);
	if (s.label[0])
		st.SetLabel(s.label);
}

void run_instance(const pb_instance *in, benchmark::State &st)
{
	pb_state s;
	pb_state_init(&s, in, st.thread_index(), st.threads(), &gb_ops, &st);
	in->b->fn(&s);
	pb_state_after_fn(&s);
	if (!s.skipped)
		publish(st, s);
	pb_state_done(&s);
}

class Collector : public benchmark::BenchmarkReporter {
public:
	int err = 0;
	bool ReportContext(const Context &) override { return true; }
	void ReportRuns(const std::vector<Run> &reports) override
	{
		for (const Run &r : reports)
			if (r.run_type == Run::RT_Iteration && !err)
				err = report(r);
	}

private:
	static int report(const Run &r)
	{
		const pb_instance *ins;
		int n = pb_instances(&ins);
		pb_run out;
		std::memset(&out, 0, sizeof(out));
		for (int i = 0; i < n && !out.inst; i++)
			if (r.run_name.function_name == ins[i].name)
				out.inst = &ins[i];
		if (!out.inst)
			return EINVAL;
		out.repetition_index = (int)r.repetition_index;
		out.iterations = r.iterations;
		out.real_ns = r.GetAdjustedRealTime();
		out.cpu_ns = r.GetAdjustedCPUTime();
		out.error = r.error_occurred;
		std::snprintf(out.message, sizeof(out.message), "%s", r.error_message.c_str());
		std::snprintf(out.label, sizeof(out.label), "%s", r.report_label.c_str());
		for (const auto &c : r.counters) {
			if (out.ncounters == PB_MAX_RUN_COUNTERS)
				break;
			std::snprintf(out.counter[out.ncounters].name, sizeof(out.counter[0].name), "%s", c.first.c_str());
			out.counter[out.ncounters++].value = c.second.value;
		}
		return pb_report_run(&out);
	}
};

// iterations > 0: that many per repetition; 0: the library calibrates (and warms up).
void register_instance(const pb_instance *in, int64_t iterations)
{
	benchmark::internal::Benchmark *b =
		benchmark::RegisterBenchmark(in->name, [in](benchmark::State &st) { run_instance(in, st); });
	b->Unit(benchmark::kNanosecond)->Repetitions(in->repetitions);
	// The library refuses a warm-up time with a fixed iteration count.
	if (iterations > 0)
		b->Iterations(iterations);
	else if (b->MinTime(in->min_time) && in->min_warmup > 0)
		b->MinWarmUpTime(in->min_warmup);
	if (in->b->manual_time)
		b->UseManualTime();
	if (in->threads > 1)
		b->Threads(in->threads);
}

// One instance after another: calibrated, registered alone, run, forgotten.
int run_one_by_one(const pb_instance *ins, int n, Collector &collector)
{
	for (int i = 0; i < n && !collector.err; i++) {
		int64_t iters = 0;
		int e = pb_calibrate(&ins[i], &iters);
		if (e)
			return e;
		register_instance(&ins[i], iters);
		benchmark::RunSpecifiedBenchmarks(&collector); // the only one registered
		benchmark::ClearRegisteredBenchmarks();
	}
	return collector.err;
}

} // namespace

extern "C" int pb_gbench_run(void)
{
	const pb_instance *ins;
	int n = pb_instances(&ins);
	std::string prog = "pagelab-bench";
	std::string interleave = "--benchmark_enable_random_interleaving=true";
	std::vector<char *> argv = {&prog[0]};
	if (pb_opts.random_interleaving)
		argv.push_back(&interleave[0]);
	argv.push_back(nullptr);
	int argc = (int)argv.size() - 1;
	benchmark::Initialize(&argc, argv.data());
	Collector collector;
	pb_report_begin("gbench");
	int e = 0;
	if (!pb_opts.random_interleaving) {
		e = run_one_by_one(ins, n, collector);
	} else {
		for (int i = 0; i < n; i++)
			register_instance(&ins[i], ins[i].fixed_iterations);
		if (n > 0)
			benchmark::RunSpecifiedBenchmarks(&collector);
		e = collector.err;
	}
	benchmark::Shutdown();
	return e;
}
