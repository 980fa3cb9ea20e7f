"""Unit tests of analysis/plot_plan.py: only simulated candidates are drawn,
the fronts come from the planner's flags in x order, the cost panel appears
only with prices, labels name the deployment, and a PNG is written with the
chosen point.

    /usr/bin/python3 tests/plot_plan_test.py   (from the repository)
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "analysis"))
import pandas as pd  # noqa: E402

import plot_plan as pp  # noqa: E402

COLUMNS = ["index", "gpu", "num_gpus", "tp", "pp", "dp", "ep", "recipe",
           "simulated", "meets_slo", "tpot_s", "ttft_s",
           "output_tokens_per_s_per_gpu", "cost_per_million_tokens",
           "pareto_tpot", "pareto_ttft", "pareto_cost", "chosen", "fits"]


def table(rows, path):
    """Writes rows (index, simulated, meets, tpot, tput, cost, front, chosen)."""
    data = []
    for index, simulated, meets, tpot, tput, cost, on_front, chosen in rows:
        data.append({
            "index": index, "gpu": "H100-SXM5-80GB", "num_gpus": 2, "tp": 2,
            "pp": 1, "dp": 1, "ep": 1, "recipe": "fp8",
            "simulated": "true" if simulated else "false",
            "meets_slo": "true" if meets else "false", "tpot_s": tpot,
            "ttft_s": tpot * 10, "output_tokens_per_s_per_gpu": tput,
            "cost_per_million_tokens": cost,
            "pareto_tpot": "true" if on_front else "false",
            "pareto_ttft": "true" if on_front else "false",
            "pareto_cost": "false", "chosen": "true" if chosen else "false",
            "fits": "true"})
    pd.DataFrame(data, columns=COLUMNS).to_csv(path, index=False)


class PlotPlanTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix=f"plot_plan_{os.getpid()}_")
        self.csv = os.path.join(self.dir.name, "candidates.csv")

    def tearDown(self):
        self.dir.cleanup()

    def test_only_simulated_candidates_and_fronts_in_x_order(self):
        table([(0, True, True, 0.03, 300, 0, True, True),
               (1, True, True, 0.01, 100, 0, True, False),
               (2, True, False, 0.05, 50, 0, False, False),
               (3, False, False, 0, 0, 0, False, False)], self.csv)
        df = pp.load(self.csv)
        self.assertEqual(list(df["index"]), [0, 1, 2])
        self.assertEqual(list(pp.front(df, "pareto_tpot", "tpot_s")["index"]),
                         [1, 0])
        # No prices: the cost panel is left out.
        self.assertEqual([p[0][2] for p in pp.panels(df)],
                         ["pareto_tpot", "pareto_ttft"])
        self.assertEqual(pp.label(df.iloc[0]), "H100-SXM5-80GB x2 tp2 pp1 dp1 fp8")

    def test_writes_a_png_with_the_cost_panel_when_priced(self):
        table([(0, True, True, 0.03, 300, 1.5, True, True),
               (1, True, True, 0.01, 100, 4.0, True, False)], self.csv)
        df = pp.load(self.csv)
        self.assertEqual(len(pp.panels(df)), 3)
        out = os.path.join(self.dir.name, "pareto.png")
        pp.plot(df, out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_nothing_simulated_is_one_clear_error(self):
        table([(0, False, False, 0, 0, 0, False, False)], self.csv)
        with self.assertRaises(SystemExit) as raised:
            pp.plot(pp.load(self.csv), os.path.join(self.dir.name, "x.png"))
        self.assertIn("no simulated candidate", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
