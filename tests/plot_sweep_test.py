"""Unit tests of analysis/plot_sweep.py's choices (issue 14, item 19):
ticks at the batch sizes swept, a Pareto front per workload labelled with
its strategies, no communication plot for one-GPU sweeps, the memory plot's
dropped points named, sortable tables, a cost plot when prices exist.

    /usr/bin/python3 tests/plot_sweep_test.py   (from the repository)
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "analysis"))
import pandas as pd  # noqa: E402

import plot_sweep as ps  # noqa: E402


def points(rows):
    """A table of ran points: each row (tp, batch, prompt, tok/s/GPU, TPOT)."""
    data = []
    for i, (tp, batch, prompt, per_gpu, tpot) in enumerate(rows):
        data.append({
            "point": i, "tp": tp, "pp": 1, "dp": 1, "batch_size": batch,
            "prompt_len": prompt, "output_len": 16, "num_gpus": tp,
            "output_tokens_per_s_per_gpu": per_gpu, "tpot_mean_s": tpot,
            "fits": True, "cluster": "DGX-H100", "comm_overhead": 0.1,
            "cost_per_million_output_tokens": float("nan"),
        })
    df = pd.DataFrame(data)
    return df.assign(strategy=df.apply(ps.strategy, axis=1))


class PlotSweepTest(unittest.TestCase):
    def test_ticks_are_the_batch_sizes_swept(self):
        df = points([(8, 64, 128, 1, 1), (8, 1, 128, 1, 1), (8, 24, 128, 1, 1),
                     (4, 24, 128, 1, 1)])
        self.assertEqual(ps.batch_ticks(df), [1, 24, 64])

    def test_a_pareto_front_per_workload_labelled_with_strategies(self):
        df = points([
            (8, 1, 128, 100.0, 0.010),   # front of prompt 128
            (4, 8, 128, 300.0, 0.020),   # front of prompt 128
            (2, 8, 128, 200.0, 0.030),   # beaten by the tp4 point
            (8, 1, 4096, 50.0, 0.040),   # only beaten by prompt-128 points:
            (8, 8, 4096, 40.0, 0.050),   # on its own workload's front
        ])
        fronts = ps.pareto_fronts(df)
        self.assertEqual([w for w, _ in fronts],
                         ["prompt 128, out 16", "prompt 4096, out 16"])
        self.assertEqual(list(fronts[0][1]["point"]), [0, 1])
        self.assertEqual(list(fronts[1][1]["point"]), [3])
        self.assertEqual(ps.front_label(fronts[0][1].iloc[1]), "tp4 pp1 dp1 b8")

    def test_no_communication_plot_on_one_gpu(self):
        self.assertEqual(ps.comm_plot_reason(points([(1, 1, 128, 1, 1)])),
                         "every point runs on one GPU: nothing to communicate")
        self.assertIsNone(ps.comm_plot_reason(points([(1, 1, 128, 1, 1),
                                                      (2, 1, 128, 1, 1)])))

    def test_dropped_points_are_named_as_ranges(self):
        self.assertEqual(ps.point_ranges([8, 1, 2, 3, 5, 7]), "1-3, 5, 7-8")

    def test_tables_sort_by_column(self):
        html = ps.html_table(pd.DataFrame({"a": [1], "b": ["x"]}))
        self.assertEqual(html.count('<th onclick="sortTable(this)">'), 2)
        self.assertIn("function sortTable", ps.SORT_SCRIPT)

    def test_cost_plot_only_with_prices(self):
        df = points([(8, 1, 128, 1, 1), (4, 1, 128, 1, 1)])
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "cost.png")
            self.assertFalse(ps.plot_cost(df, path))
            self.assertFalse(os.path.exists(path))
            df.loc[1, "cost_per_million_output_tokens"] = 1.25
            self.assertTrue(ps.plot_cost(df, path))
            self.assertGreater(os.path.getsize(path), 5000)


if __name__ == "__main__":
    unittest.main()
