"""Unit tests of analysis/plot_serve.py: a small serve table (two plans at
three rates, one skipped point) gives both PNGs and a page, and each curve
joins exactly its plan's points in rate order; a table with one rate per
plan draws bars; plot_sweep.py hands a serve table over.

    /usr/bin/python3 tests/plot_serve_test.py   (from the repository)
"""
import csv
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "analysis"))
import plot_serve as pv  # noqa: E402
import plot_sweep as ps  # noqa: E402

RATE = "serving.arrival.rate_per_s"
# The columns a serve sweep writes (sim/sweep/results.cc), the ones these
# tests fill; the rest are empty.
COLUMNS = (["point", "key", "status", "reason", "parallelism.tp", RATE]
           + ["model", "cluster", "gpu", "interconnect", "num_gpus", "tp",
              "pp", "dp", "arrival", "rate_per_s", "requests_per_s",
              "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
              "slo_ttft_s", "slo_tpot_s", "slo_e2e_s", "slo_attainment",
              "goodput_requests_per_s", "what_ran", "sweep_id",
              "sweep_points"])
WHAT_RAN = ("precision recipe bf16: weights BF16, GEMM inputs BF16; "
            "overrides parallelism.tp=4; collectives 1e3 by link kind")


def row(point, tp, rate, ttft, tpot, attainment, status="ok"):
    """A point of tp `tp` at `rate`: TTFT p50 `ttft` (p99 twice that), TPOT
    p50 `tpot` (p99 1.5x), SLO attainment and goodput = attainment x rate."""
    cells = {"point": point, "key": f"parallelism.tp={tp};{RATE}={rate}",
             "status": status, "reason": "", "parallelism.tp": tp, RATE: rate,
             "sweep_id": "fnv1a64:0", "sweep_points": 7}
    if status != "ok":
        cells["reason"] = "tp=3 does not divide the 64 attention heads"
        return cells
    cells.update({
        "model": "Llama-3-70B", "cluster": "DGX-H100",
        "gpu": "H100-SXM5-80GB", "interconnect": "nvlink", "num_gpus": tp,
        "tp": tp, "pp": 1, "dp": 1, "arrival": "POISSON", "rate_per_s": rate,
        "requests_per_s": rate, "ttft_p50_s": ttft, "ttft_p99_s": 2 * ttft,
        "tpot_p50_s": tpot, "tpot_p99_s": 1.5 * tpot, "slo_ttft_s": 1,
        "slo_tpot_s": 0.05, "slo_e2e_s": "", "slo_attainment": attainment,
        "goodput_requests_per_s": attainment * rate, "what_ran": WHAT_RAN})
    return cells


def write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, COLUMNS, restval="")
        out.writeheader()
        out.writerows(rows)


# Rows deliberately out of rate order: a curve is drawn in rate order.
TABLE = [
    row(0, 4, 8, 0.4, 0.03, 0.5),
    row(1, 4, 1, 0.1, 0.02, 1.0),
    row(2, 4, 4, 0.2, 0.025, 0.75),
    row(3, 8, 1, 0.05, 0.01, 1.0),
    row(4, 8, 4, 0.1, 0.015, 1.0),
    row(5, 8, 8, 0.3, 0.02, 0.875),
    row(6, 3, 1, 0, 0, 0, status="skipped"),
]


def is_png(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x89PNG" and os.path.getsize(path) > 5000


class PlotServeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(
            prefix=f"plot_serve_{os.getpid()}_")
        self.table = os.path.join(self.dir.name, "serve.csv")
        write(self.table, TABLE)

    def tearDown(self):
        self.dir.cleanup()

    def test_recognises_serve_tables(self):
        self.assertTrue(pv.is_serve_table(self.table))
        run = os.path.join(self.dir.name, "run.csv")
        with open(run, "w", encoding="utf-8") as f:
            f.write("point,key,status,reason,model,ttft_p99_s\n")
        self.assertFalse(pv.is_serve_table(run))

    def test_what_ran_stays_text(self):
        df = pv.read_table(self.table)
        ok = df[df["status"] == "ok"]
        self.assertEqual(list(ok["what_ran"].unique()), [WHAT_RAN])

    def test_a_line_per_plan_through_its_points_in_rate_order(self):
        df = pv.read_table(self.table)
        ok, xlabel = pv.add_series(df[df["status"] == "ok"],
                                   pv.swept_columns(df))
        self.assertEqual(xlabel, "offered request rate (requests/s)")
        path = os.path.join(self.dir.name, "latency.png")
        shown = pv.plot_latency(ok, xlabel, path)
        self.assertTrue(is_png(path))
        self.assertEqual(sorted(shown), ["TPOT p50", "TPOT p99", "TTFT p50",
                                         "TTFT p99"])
        # Lines are labelled by the swept field that is not the rate; the
        # SLO target is a line of its own (ms).
        ttft = {label: (xs, ys) for label, xs, ys in shown["TTFT p50"]}
        self.assertEqual(sorted(ttft), ["SLO 1000 ms", "tp=4", "tp=8"])
        self.assertEqual(ttft["tp=4"][0], [1, 4, 8])
        for got, want in zip(ttft["tp=4"][1], [100, 200, 400]):
            self.assertAlmostEqual(got, want)
        self.assertEqual(ttft["tp=8"][0], [1, 4, 8])
        for got, want in zip(ttft["tp=8"][1], [50, 100, 300]):
            self.assertAlmostEqual(got, want)
        tpot99 = {label: ys for label, _, ys in shown["TPOT p99"]}
        for got, want in zip(tpot99["tp=8"], [15, 22.5, 30]):
            self.assertAlmostEqual(got, want)
        self.assertIn("SLO 50 ms", tpot99)

        path = os.path.join(self.dir.name, "goodput.png")
        shown = pv.plot_goodput(ok, xlabel, path)
        self.assertTrue(is_png(path))
        goodput = {label: (xs, ys) for label, xs, ys in shown["Goodput"]}
        self.assertEqual(goodput["tp=4"], ([1, 4, 8], [1.0, 3.0, 4.0]))
        self.assertEqual(goodput["tp=8"], ([1, 4, 8], [1.0, 4.0, 7.0]))
        share = {label: ys for label, _, ys in shown["SLO attainment"]}
        self.assertEqual(share["tp=4"], [100.0, 75.0, 50.0])

    def test_one_rate_per_plan_draws_a_bar_per_plan(self):
        write(self.table, [row(0, 4, 2, 0.1, 0.02, 1.0),
                           row(1, 8, 2, 0.05, 0.01, 1.0)])
        df = pv.read_table(self.table)
        ok, xlabel = pv.add_series(df, pv.swept_columns(df))
        self.assertTrue(pv.single_rate(ok))
        shown = pv.plot_latency(ok, xlabel,
                                os.path.join(self.dir.name, "l.png"))
        bars = [ys for label, _, ys in shown["TTFT p50"]
                if not label.startswith("SLO")]
        self.assertEqual(len(bars), 1)
        for got, want in zip(bars[0], [100, 50]):  # tp=4, tp=8
            self.assertAlmostEqual(got, want)
        self.assertEqual(pv.bar_title(ok, "Latency"),
                         "Latency by configuration at 2 requests/s")

    def test_a_swept_topology_is_named_by_its_gpu(self):
        r = row(0, 4, 2, 0.1, 0.02, 1.0)
        r["topology_file"] = "../topologies/dgx_a100.textproto"
        r["gpu"] = "A100-SXM4-80GB"
        self.assertEqual(pv.config_label(r, ["topology_file"]),
                         "dgx_a100 (A100-SXM4-80GB)")

    def test_swept_pool_sizes_are_named_by_the_deployment(self):
        r = row(0, 4, 2, 0.1, 0.02, 1.0)
        r["pools[0].parallelism.dp"] = 3
        r["pools[1].parallelism.dp"] = 1
        r["deployment"] = "P tp2x3 + D tp2x1"
        self.assertEqual(
            pv.config_label(r, ["pools[0].parallelism.dp",
                                "pools[1].parallelism.dp", "parallelism.tp"]),
            "P tp2x3 + D tp2x1 tp=4")

    def test_no_rate_setting_plots_the_achieved_rate(self):
        rows = [row(0, 4, 2, 0.1, 0.02, 1.0), row(1, 8, 2, 0.05, 0.01, 1.0)]
        for r, achieved in zip(rows, [1.5, 1.75]):
            r["rate_per_s"] = ""
            r["arrival"] = "TRACE"
            r["requests_per_s"] = achieved
        write(self.table, rows)
        df = pv.read_table(self.table)
        ok, xlabel = pv.add_series(df, pv.swept_columns(df))
        self.assertEqual(ok["x"].tolist(), [1.5, 1.75])
        self.assertIn("achieved", xlabel)

    def test_main_and_plot_sweep_write_both_plots_and_the_page(self):
        for script in (pv, ps):
            out = os.path.join(self.dir.name, f"out_{script.__name__}")
            self.assertEqual(script.main([self.table, f"--out={out}"]), 0)
            for name, _ in pv.PLOTS:
                self.assertTrue(is_png(os.path.join(out, name)), name)
            with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
                page = f.read()
            self.assertIn('<img src="latency_vs_rate.png"', page)
            self.assertIn('<img src="goodput_vs_rate.png"', page)
            self.assertIn("Skipped points", page)
            self.assertIn("tp=3 does not divide", page)

    def test_not_a_serve_table_is_one_line(self):
        bad = os.path.join(self.dir.name, "bad.csv")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("point,key,status,reason,model\n")
        with self.assertRaises(ValueError) as e:
            pv.read_table(bad)
        self.assertIn("not a shardsim serve sweep table", str(e.exception))


if __name__ == "__main__":
    unittest.main()
