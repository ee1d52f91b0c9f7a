# SPDX-License-Identifier: BSD-3-Clause
"""The metrics rondo's alert rules and Grafana dashboard query, and whether an exposition has
them. Shared by tests/unit/monitoring_test.py (static checks) and
tests/e2e/pool_changes_test.py (against a live /metrics).

The PromQL reading is a tokenizer, not a parser: enough for the queries in deploy/ (selectors,
functions, aggregations with by/without, vector matching with on/ignoring/group_left, ranges,
offsets, Grafana's $variables) and checked on them by the unit test.
"""

import json
import os
import re

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(SRC, "deploy", "prometheus", "rondo-alerts.yml")
DASHBOARD = os.path.join(SRC, "deploy", "grafana", "rondo-dashboard.json")

# Series Prometheus makes for every scrape target, and labels it adds to every series.
PROMETHEUS_SERIES = {"up"}
TARGET_LABELS = {"instance", "job"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$\w+)                      # Grafana: $__rate_interval, ${vip}
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
""", re.X)

# Followed by a parenthesised list of label names.
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Neither a metric nor a function.
_KEYWORDS = _LABEL_LISTS | {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


def _tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup not in ("ws", "comment"):
            out.append((m.lastgroup, m.group()))
    return out


def promql_names(expr):
    """(metric names, label names) a PromQL expression refers to. Function and aggregation
    names, keywords, strings, numbers, durations and Grafana variables are not names."""
    toks = _tokens(expr)
    metrics, labels = set(), set()
    i = 0

    def matchers(i):
        """Label names of a {...} matcher list starting at toks[i] == '{'; returns the index
        after the '}' and the __name__ it sets, if any."""
        name = None
        i += 1
        while i < len(toks) and toks[i][1] != "}":
            kind, text = toks[i]
            if kind == "ident" and i + 1 < len(toks) and toks[i + 1][1] in ("=", "!=", "=~", "!~"):
                if text == "__name__" and toks[i + 1][1] == "=" and toks[i + 2][0] == "string":
                    name = toks[i + 2][1][1:-1]
                else:
                    labels.add(text)
            i += 1
        return i + 1, name

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if text == "[":  # a range or subquery: durations and variables only
            while i < len(toks) and toks[i][1] != "]":
                i += 1
            i += 1
        elif text == "{":  # {__name__="x", ...}
            i, name = matchers(i)
            if name:
                metrics.add(name)
        elif kind == "ident" and text.lower() in _LABEL_LISTS and nxt == "(":
            i += 2
            while i < len(toks) and toks[i][1] != ")":
                if toks[i][0] == "ident":
                    labels.add(toks[i][1])
                i += 1
            i += 1
        elif kind == "ident" and (text.lower() in _KEYWORDS or nxt == "(" or
                                  (nxt or "").lower() in ("by", "without")):
            i += 1  # keyword, function, or aggregation (`sum(` or `sum by (`)
        elif kind == "ident":
            metrics.add(text)
            i += 1
            if nxt == "{":
                i, _ = matchers(i)
        else:
            i += 1
    return metrics, labels


# Grafana's template-variable queries (Prometheus data source) are not PromQL.
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*([A-Za-z_]\w*)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)


def variable_query_names(query):
    """(metric names, label names) of a Grafana variable query."""
    m = _LABEL_VALUES.match(query)
    if m:
        metrics, labels = promql_names(m.group(1) or "")
        return metrics, labels | {m.group(2)}
    m = _QUERY_RESULT.match(query)
    if m:
        return promql_names(m.group(1))
    if re.match(r"^\s*(label_names|metrics)\(", query):
        return set(), set()
    return promql_names(query)


def rule_queries(path=RULES):
    """[(where, expr)] of every rule in a Prometheus rules file."""
    import yaml  # python3-yaml: only the callers that read the rules need it
    with open(path) as f:
        doc = yaml.safe_load(f)
    out = []
    for g in doc["groups"]:
        for r in g["rules"]:
            out.append((f"rule {r.get('alert') or r.get('record')}", r["expr"]))
    return out


def dashboard_queries(path=DASHBOARD):
    """[(where, query, legend)] of every panel target and template variable (legend None:
    a variable's query)."""
    with open(path) as f:
        dash = json.load(f)
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))  # collapsed rows hold their panels

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p.get('title')!r} {t.get('refId', '')}", t["expr"],
                            t.get("legendFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                out.append((f"variable {v['name']}", q, None))
    return out


def all_queries():
    """[(where, metric names, label names)] of the rules and the dashboard."""
    out = [(w, *promql_names(e)) for w, e in rule_queries()]
    for w, q, legend in dashboard_queries():
        if legend is None:
            out.append((w, *variable_query_names(q)))
        else:
            metrics, labels = promql_names(q)
            out.append((w, metrics, labels | legend_labels(legend)))
    return out


def legend_labels(legend):
    """Label names a Grafana legend format shows: {{vip}} {{ backend }}."""
    return set(re.findall(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}", legend))


def parse_exposition(text):
    """{family or sample name: {"type": TYPE or None, "labels": set of label names}} of a
    Prometheus text exposition."""
    fams = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            fams.setdefault(name, {"type": None, "labels": set()})["type"] = typ.strip()
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s", line)
            if not m:
                continue
            entry = fams.setdefault(m.group(1), {"type": None, "labels": set()})
            entry["labels"] |= set(re.findall(r'([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"', m.group(3) or ""))
    return fams


def _family(name, fams):
    """The exposition entry a queried name reads: itself, or the histogram or summary whose
    _bucket/_sum/_count series it is."""
    if name in fams:
        return fams[name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and fams.get(base, {}).get("type") in ("histogram", "summary"):
            return fams[base]
    return None


def problems(queries, fams):
    """What the queries name that the exposition lacks: one line per (where, name)."""
    out = []
    for where, metrics, labels in queries:
        known = set(TARGET_LABELS)
        for m in sorted(metrics):
            f = _family(m, fams)
            if f is None and m not in PROMETHEUS_SERIES:
                out.append(f"{where}: metric {m} is not exported")
            elif f is not None:
                known |= f["labels"]
                if f.get("type") == "histogram":
                    known.add("le")
        # A label is fine if some metric of the query carries it (a coarse test: it catches
        # a misspelt label, not one taken from the wrong side of a binary operation).
        for lbl in sorted(labels - known - {"__name__"}):
            out.append(f"{where}: label {lbl} is on none of {', '.join(sorted(metrics))}")
    return out
