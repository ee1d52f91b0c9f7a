#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Alert rules and dashboard (deploy/prometheus, deploy/grafana), without a running rondo:

  - `promtool check rules`, `promtool test rules` (each alert fires in one case and stays
    silent in another: checked here too), `promtool check config` on the example config
  - the PromQL name extractor on tricky expressions, and the check built on it finding a
    misspelt metric or label in an exposition
  - every metric the rules and the dashboard name is one the exporter's source declares
    (the e2e test pool-changes checks them against a live /metrics, labels included)
  - the dashboard: the panels the operators need, a templated data source, unique ids
"""

import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import monitoring  # noqa: E402

import yaml  # noqa: E402

SRC = monitoring.SRC
PROM_DIR = os.path.dirname(monitoring.RULES)
TESTS = os.path.join(PROM_DIR, "rondo-alerts.test.yml")

ALERTS = {"RondoControlPlaneDown", "RondoDataplaneDown", "RondoDataplaneOutOfSync",
          "RondoDataplaneRestartedUnplanned", "RondoBackendDown", "RondoVipAllBackendsDown", "RondoDropsRising",
          "RondoSynCookiesActive", "RondoFlowTableNearFull", "RondoFlowTable6NearFull",
          "RondoLocalPortsNearFull"}
PANELS = {"New connections/s per VIP", "New connections/s per backend", "Backend health",
          "Drops/s by reason", "Worker busy share", "Flow table fill per worker",
          "Local-port fill per backend", "Control-plane sync over time"}


def promtool(*args):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60,
                       cwd=PROM_DIR)
    return r.returncode, (r.stdout + r.stderr).strip()


@unittest.skipIf(shutil.which("promtool") is None,
                 "promtool not installed (Debian package prometheus; tools/lib/deps.sh)")
class Promtool(unittest.TestCase):
    def test_check_rules(self):
        rc, out = promtool("check", "rules", "rondo-alerts.yml")
        self.assertEqual(rc, 0, out)
        print(out.splitlines()[-1].strip(), file=sys.stderr)

    def test_test_rules(self):
        rc, out = promtool("test", "rules", "rondo-alerts.test.yml")
        self.assertEqual(rc, 0, out)

    def test_check_example_config(self):
        rc, out = promtool("check", "config", "prometheus.yml")
        self.assertEqual(rc, 0, out)


class Rules(unittest.TestCase):
    def setUp(self):
        with open(monitoring.RULES) as f:
            self.rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]

    def test_alerts_say_how_long_how_bad_and_what_to_do(self):
        self.assertEqual({r["alert"] for r in self.rules}, ALERTS)
        for r in self.rules:
            with self.subTest(r["alert"]):
                self.assertIn("for", r)
                self.assertIn(r["labels"]["severity"], ("critical", "warning"))
                self.assertTrue(r["annotations"]["summary"])
                # The operator is told what to run.
                self.assertRegex(r["annotations"]["description"], r"`(rondoctl|systemctl) ")

    def test_each_alert_has_a_firing_and_a_silent_case(self):
        with open(TESTS) as f:
            doc = yaml.safe_load(f)
        firing, silent = set(), set()
        for t in doc["tests"]:
            for a in t.get("alert_rule_test", []):
                (firing if a.get("exp_alerts") else silent).add(a["alertname"])
        self.assertEqual(firing, ALERTS, "alerts without a case where they fire")
        self.assertEqual(silent, ALERTS, "alerts without a case where they stay silent")


class Extractor(unittest.TestCase):
    CASES = [
        ('sum by (vip) (rate(rondo_vip_connections_total{instance=~"$instance"}[$__rate_interval]))',
         {"rondo_vip_connections_total"}, {"vip", "instance"}),
        ("sum(rate(a_total[5m])) without (lcore) / ignoring(reason) group_left b",
         {"a_total", "b"}, {"lcore", "reason"}),
        ("x > on (instance, job) group_left 0.01 * sum by (instance) (y)", {"x", "y"},
         {"instance", "job"}),
        ("a / on (i) group_right (extra) b", {"a", "b"}, {"i", "extra"}),
        ("rate(c_total[1h] offset 1d) > bool 0", {"c_total"}, set()),
        ("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}, {"le"}),
        ('{__name__="by_name", job="x"}', {"by_name"}, {"job"}),
        ("max_over_time(g[1h:5m]) and time() - t < 60", {"g", "t"}, set()),
        ('label_replace(l, "dst", "$1", "src", "(.*)")', {"l"}, set()),
        ("count(x) BY (y) unless -inf < z", {"x", "z"}, {"y"}),
        ("1e3 * m + 0x10 - n # a comment naming not_a_metric", {"m", "n"}, set()),
        # Label values and strings are not names, even when they look like one.
        ('up{job="rondo_controlplane", instance!~"by|sum"} == 0', {"up"}, {"job", "instance"}),
    ]

    def test_promql(self):
        for expr, metrics, labels in self.CASES:
            with self.subTest(expr):
                self.assertEqual(monitoring.promql_names(expr), (metrics, labels))

    def test_grafana_variables_and_legends(self):
        self.assertEqual(
            monitoring.variable_query_names('label_values(rondo_vip_info{instance=~"$instance"}, vip)'),
            ({"rondo_vip_info"}, {"instance", "vip"}))
        self.assertEqual(monitoring.variable_query_names("label_values(instance)"),
                         (set(), {"instance"}))
        self.assertEqual(monitoring.variable_query_names("query_result(topk(3, q))"), ({"q"}, set()))
        self.assertEqual(monitoring.legend_labels("{{vip}} {{ backend }} lcore"), {"vip", "backend"})

    def test_unreadable_promql_is_an_error(self):
        with self.assertRaises(ValueError):
            monitoring.promql_names("rate(x[5m]) ; drop")


EXPOSITION = """\
# HELP rondo_backend_up 0 when down.
# TYPE rondo_backend_up gauge
rondo_backend_up{backend="198.51.100.3:3000",vip="web"} 1
# HELP rondo_lcore_dropped_packets_total Drops.
# TYPE rondo_lcore_dropped_packets_total counter
rondo_lcore_dropped_packets_total{lcore="1",reason="no_backend"} 5
# HELP rondo_push_seconds Push time.
# TYPE rondo_push_seconds histogram
rondo_push_seconds_bucket{le="0.1"} 1
rondo_push_seconds_bucket{le="+Inf"} 1
rondo_push_seconds_sum 0.05
rondo_push_seconds_count 1
"""


class AgainstExposition(unittest.TestCase):
    def setUp(self):
        self.fams = monitoring.parse_exposition(EXPOSITION)

    def check(self, where, expr):
        return monitoring.problems([(where, *monitoring.promql_names(expr))], self.fams)

    def test_exported_names_pass(self):
        self.assertEqual(self.check("ok", 'sum by (vip, instance) (rondo_backend_up{backend!=""})'), [])
        self.assertEqual(self.check("hist", "histogram_quantile(0.5, sum by (le) "
                                            "(rate(rondo_push_seconds_bucket[5m])))"), [])
        self.assertEqual(self.check("up", 'up{job="rondo"} == 0'), [])

    def test_a_misspelt_metric_is_found(self):
        self.assertEqual(self.check("rule X", "rondo_backend_upp == 0 and rondo_backend_up == 0"),
                         ["rule X: metric rondo_backend_upp is not exported"])
        # A suffix only counts for histograms and summaries.
        self.assertEqual(self.check("c", "rondo_backend_up_count"),
                         ["c: metric rondo_backend_up_count is not exported"])

    def test_a_misspelt_label_is_found(self):
        self.assertEqual(
            self.check("panel P", "sum by (reasn) (rate(rondo_lcore_dropped_packets_total[5m]))"),
            ["panel P: label reasn is on none of rondo_lcore_dropped_packets_total"])


class Sources(unittest.TestCase):
    def test_every_queried_metric_is_declared_by_the_exporter(self):
        # Family names as string literals in the exporter and the lcore counter table.
        declared = set()
        for rel in ("controlplane/metrics/metrics.cpp", "dataplane/stats/counters.h"):
            with open(os.path.join(SRC, rel)) as f:
                declared |= set(re.findall(r'"(rondo_[a-z0-9_]+)"', f.read()))
        self.assertGreater(len(declared), 40)
        queries = monitoring.all_queries()
        self.assertGreater(len(queries), 40)
        unknown = [f"{w}: {m}" for w, metrics, _ in queries for m in sorted(metrics)
                   if m not in declared | monitoring.PROMETHEUS_SERIES]
        self.assertEqual(unknown, [])


class Dashboard(unittest.TestCase):
    def setUp(self):
        with open(monitoring.DASHBOARD) as f:
            self.dash = json.load(f)

    def test_panels_the_operators_need(self):
        titles = {p["title"] for p in self.dash["panels"]}
        self.assertEqual(PANELS - titles, set())

    def test_templated_data_source_and_unique_ids(self):
        variables = {v["name"]: v for v in self.dash["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        ids = [p["id"] for p in self.dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        for p in self.dash["panels"]:
            if p["type"] == "row":
                continue
            with self.subTest(p["title"]):
                self.assertEqual(p["datasource"]["uid"], "${datasource}")
                self.assertTrue(p["targets"])
                for t in p["targets"]:
                    self.assertEqual(t["datasource"]["uid"], "${datasource}")
                    self.assertIn('instance=~"$instance"', t["expr"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
