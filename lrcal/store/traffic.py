"""The gateway's traffic log (mixed into `Store`): requests `lrcal serve` answered, every
upstream attempt, shadow calls; and the fingerprint the gateway polls to hot-reload.

Rows are written in batches by the gateway's log writer thread (one transaction per batch);
``request_id`` is unique in each table, so a batch written twice (a retry after a failed
commit) adds nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

from lrcal.store.encoding import utcnow

TRAFFIC_TABLES = ("traffic", "traffic_attempts", "traffic_shadow")


def _storable(row: dict) -> dict:
    """A traffic row as SQLite takes it: text that came from a client or an endpoint may hold
    lone surrogates (valid JSON escapes, not encodable as UTF-8), and an endpoint's usage block
    may report integers beyond SQLite's range; either would make the whole batch fail."""
    out = {}
    for key, value in row.items():
        if isinstance(value, str):
            value = value.encode("utf-8", "replace").decode("utf-8")
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            value = None
        out[key] = value
    return out


class TrafficQueries:
    def record_traffic(self, requests: Sequence[dict], attempts: Sequence[dict] = (), shadows: Sequence[dict] = ()) -> None:
        """Write one batch of request, attempt and shadow rows in one transaction."""
        now = utcnow()
        with self.write():
            for table, rows in zip(TRAFFIC_TABLES, (requests, attempts, shadows)):
                if rows:
                    self.db[table].insert_all(({"created_at": now, **_storable(row)} for row in rows), ignore=True,
                                              batch_size=500)  # fmt: skip

    def traffic_requests(self, since: str | None = None) -> list[dict]:
        """Request rows, oldest first (``since``: an ISO time; rows at or after it)."""
        sql, params = "select * from traffic", []
        if since:
            sql += " where created_at >= ?"
            params.append(since)
        return self.query(sql + " order by id", params)

    def traffic_attempts(self, request_id: str | None = None) -> list[dict]:
        if request_id is None:
            return self.query("select * from traffic_attempts order by id")
        return self.query("select * from traffic_attempts where request_id = ? order by attempt", [request_id])

    def traffic_attempts_of_requests(self, since: str | None = None) -> list[dict]:
        """Every attempt of the request rows ``traffic_requests(since)`` gives, with its request's
        task (so an attempt is counted in the same window and task as its request)."""
        sql = "select a.*, t.task as task from traffic_attempts a join traffic t on t.request_id = a.request_id"
        params: list[Any] = []
        if since:
            sql += " where t.created_at >= ?"
            params.append(since)
        return self.query(sql + " order by a.id", params)

    def traffic_shadow(self, since: str | None = None) -> list[dict]:
        """Shadow rows with the served call beside them (the same request): the served model's own
        attempt's latency (a model call, as the shadow's is: not the gateway's whole request time
        with routing and failed fallback attempts; none when the client left mid-answer, a time
        cut short) and the request's cost."""
        served_call = ("select case when a.error_kind = 'client_disconnected' then null else a.latency_ms end "
                       "from traffic_attempts a where a.request_id = s.request_id and a.model = t.served_model "
                       "order by a.attempt desc limit 1")  # fmt: skip
        sql = (f"select s.*, ({served_call}) as served_latency_ms, t.cost_usd as served_cost_usd, t.task as task "
               "from traffic_shadow s left join traffic t on t.request_id = s.request_id")
        params: list[Any] = []
        if since:
            sql += " where s.created_at >= ?"
            params.append(since)
        return self.query(sql + " order by s.id", params)

    def traffic_counts(self) -> dict[str, int]:
        """Rows per traffic table (the load test checks nothing is lost or doubled)."""
        row = self.query_one("select (select count(*) from traffic) as traffic, (select count(distinct request_id) "
                             "from traffic) as traffic_ids, (select count(*) from traffic_attempts) as attempts, "
                             "(select count(*) from traffic_shadow) as shadow")  # fmt: skip
        return dict(row)

    def gateway_fingerprint(self) -> tuple:
        """Changes whenever what the gateway routes with may have changed: a model enabled,
        disabled, changed or removed (each writes an event), a router trained or pinned, a token
        fitted, a routing policy set. One cheap read the gateway polls."""
        row = self.query_one(
            "select (select max(id) from events) as events, (select max(id) from router_versions) as routers, "
            "(select group_concat(id) from router_versions where pinned = 1) as pinned, "
            "(select max(id) from model_tokens) as tokens, (select max(id) from routing_policies) as policies"
        )
        return tuple(row.values())
