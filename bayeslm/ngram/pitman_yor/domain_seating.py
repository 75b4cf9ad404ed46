"""The domain seating of the adapted Pitman-Yor LM: sequential seating and its Gibbs sweep.

The domain customers (one per domain token) sit in the domain restaurants of Wood and Teh's
graphical hierarchy; a table of (u, w) at order k took its dish either from the frozen general
restaurant at u (where nothing more happens) or from the domain parent u', where it is a
customer. :meth:`DomainSeating.seat` seats the customers one at a time by the Chinese
restaurant rule; :meth:`DomainSeating.sweep` reseats every customer given the others and then
redraws every table's dish source, both exact Gibbs updates of the seating given (d, theta,
lam); :meth:`DomainSeating.move_table_counts` draws every pair's table count and dish sources at
once (:mod:`~bayeslm.ngram.pitman_yor.domain_table_counts`). The moves and what they cost:
docs/domain.md ("Pitman-Yor adaptation", "Inference").
"""

from __future__ import annotations

import random

import numpy as np

from bayeslm.ngram.pitman_yor.fast import OrderStatistics
from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy

__all__ = ["DomainSeating"]


class DomainSeating:
    """The domain customers seated in the graphical hierarchy, by the Chinese restaurant rule.

    A customer of domain restaurant u (order k) for dish w joins a table of (u, w) with
    probability proportional to its size minus d_k, or opens one with probability
    proportional to ``(theta_k + d_k t_u.) M_k(w | u)``; the new table's dish comes from the
    general restaurant u (probability ``lam_k G_k(w | u) / M_k(w | u)``, which is frozen: the
    customer stops there) or else from the domain parent u', where it is the next customer.

    ``chains``: (order, J) the union pair of every distinct domain top-order n-gram at every
    order (row k - 1: its order-k suffix); ``general``: (order, J) G_k there; ``base``: the
    base measure of its token, (J,). A customer is a column j of ``chains``.

    After :meth:`seat`, :meth:`sweep` or :meth:`move_table_counts`: ``customers``, ``tables`` (per union pair),
    ``context_customers``, ``context_tables`` (per union restaurant), ``sizes`` (per local
    pair id, its tables' sizes) and ``sent`` ((order, 2): the tables whose dish came from the
    general restaurant, and from the domain parent); :meth:`move_table_counts` keeps them.
    """

    #: the table-count move leaves a pair to the customer sweep when it holds more customers than
    #: this, or its parent could (every customer of the parent's children): Stirling tables of at
    #: most 16 MB per order
    TABLE_MOVE_MAX = 2000

    def __init__(self, hier: Hierarchy, chains: np.ndarray, general: np.ndarray, base: np.ndarray):
        self.hier, self.general, self.base = hier, general, base
        # the seating works on the pairs and restaurants the domain can reach, numbered locally
        self.pairs, local = np.unique(chains, return_inverse=True)
        self.chains = local.reshape(chains.shape)
        self.contexts, self.pair_context = np.unique(hier.pair_ctx[self.pairs], return_inverse=True)
        self.column_of = np.empty(self.pairs.size, np.int64)  # one column whose chain passes through the pair
        self.column_of[self.chains] = np.arange(self.chains.shape[1])[None, :]
        self.level_of = hier.pair_level[self.pairs]
        self.parent = np.full(self.pairs.size, -1, np.int64)  # the domain parent's local pair id
        for k in range(1, self.chains.shape[0]):
            self.parent[self.chains[k]] = self.chains[k - 1]
        self.general_of = general[self.level_of, self.column_of]
        self.base_of = base[self.column_of]
        self._state = None

    # -- the two passes ---------------------------------------------------------------------------
    def seat(self, events: np.ndarray, d, theta, lam, seed: int) -> None:
        """Seat the customers ``events`` (columns, in this order) in an empty seating."""
        n = self.hier.n
        self._state = {"cust": [0] * self.pairs.size, "tabs": [0] * self.pairs.size,
                       "C": [0] * self.contexts.size, "T": [0] * self.contexts.size,
                       "sizes": {}, "sources": {}, "sent": [[0, 0] for _ in range(n)]}
        step = _Step(self, d, theta, lam, seed)
        for j in events.tolist():
            step.add(j, n - 1)
        self._publish()

    def place(self, customers: np.ndarray, tables: np.ndarray, general_tables: np.ndarray, d, seed: int) -> None:
        """A seating with these counts per local pair (``self.pairs`` order): its customers, tables and
        tables whose dish came from the general restaurant (a pair's customers below the top order
        are its children's tables from the domain parent); the sizes drawn from their exact
        conditional, the general tables among them at random."""
        customers, tables, general_tables = (np.asarray(x, np.int64) for x in (customers, tables, general_tables))
        below = np.bincount(self.parent[self.parent >= 0], weights=(tables - general_tables)[self.parent >= 0],
                            minlength=self.pairs.size)
        inner = np.isin(np.arange(self.pairs.size), self.parent)
        bad = (tables > customers) | (general_tables > tables) | (general_tables < 0) | ((tables == 0) != (customers == 0))
        if np.any(bad) or np.any(customers[inner] != below[inner]):
            raise ValueError("DomainSeating.place: the counts are not a seating (tables <= customers, a parent's "
                             "customers the tables its children send it)")
        self._state = {"cust": customers.tolist(), "tabs": tables.tolist(),
                       "C": np.bincount(self.pair_context, customers, self.contexts.size).astype(np.int64).tolist(),
                       "T": np.bincount(self.pair_context, tables, self.contexts.size).astype(np.int64).tolist(),
                       "sizes": {}, "sources": {},
                       "sent": self._sent(tables, general_tables)}
        self._redraw_sizes(np.flatnonzero(tables > 0), np.ones(self.pairs.size, np.bool_), general_tables,
                           np.asarray(d, float), seed)
        self._publish()

    def sweep(self, events: np.ndarray, d, theta, lam, seed: int) -> None:
        """One Gibbs sweep of the seating given (d, theta, lam): every customer of ``events`` (columns,
        each once per customer, in this order) removed with the tables it leaves empty, down
        the domain parents, and reseated by the rule above; then every table's dish source
        redrawn given the rest (its customer in the domain parent removed first, and seated
        again if the parent is drawn). Needs a seating (:meth:`seat`)."""
        if self._state is None:
            raise RuntimeError("DomainSeating.sweep needs a seating: call seat first")
        n = self.hier.n
        step = _Step(self, d, theta, lam, seed)
        for j in events.tolist():
            step.remove(j, n - 1)
            step.add(j, n - 1)
        sizes = self._state["sizes"]
        for pair in sorted(sizes, key=lambda p: -self.level_of[p]):  # the top order first
            for index in range(len(sizes[pair])):
                step.redraw_source(pair, index)
        self._publish()

    def move_table_counts(self, d, theta, lam, seed: int) -> int:
        """One pass of the table-count move given (d, theta, lam), the top order first: every pair's
        tables and how many of them took their dish from the general restaurant drawn from their
        exact conditional, then the sizes of every pair whose tables or customers changed drawn
        exactly (:mod:`~bayeslm.ngram.pitman_yor.domain_table_counts`). Needs a seating
        (:meth:`seat`). Returns how many pairs moved."""
        # numba-compiled: imported when a move runs (loading, scoring and the Dirichlet adapt import no numba)
        from bayeslm.ngram.pitman_yor import seating as S
        from bayeslm.ngram.pitman_yor.domain_table_counts import sweep_domain_level
        from bayeslm.ngram.pitman_yor.table_counts import stirling_table

        if self._state is None:
            raise RuntimeError("DomainSeating.move_table_counts needs a seating: call seat first")
        state, n_pairs = self._state, self.pairs.size
        cust, tabs = np.array(state["cust"], np.int64), np.array(state["tabs"], np.int64)
        C, T = np.array(state["C"], np.int64), np.array(state["T"], np.int64)
        gen = self.general_tables()[self.pairs]  # per local pair
        d, theta, lam = (np.asarray(x, float) for x in (d, theta, lam))
        log_general, log_parent_side = self.log_source_weights(lam)
        moved, fed = np.zeros(n_pairs, np.bool_), np.zeros(n_pairs, np.bool_)
        S.seed(int(seed))
        n_moved = 0
        for k in range(self.hier.n - 1, -1, -1):
            pairs = np.flatnonzero(self.level_of == k)
            largest = int(cust[pairs].max(initial=1))  # now: the orders above have fed this order's pairs
            log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, largest + 1)))])  # log n!, n <= largest
            ls = stirling_table(min(self.TABLE_MOVE_MAX, largest), float(d[k]))
            ls_par = ls
            if k > 0:
                feed = np.bincount(self.parent[pairs], weights=cust[pairs], minlength=n_pairs).max()
                ls_par = stirling_table(int(min(self.TABLE_MOVE_MAX, max(feed, 1))), float(d[k - 1]))
            n_moved += sweep_domain_level(pairs, cust, tabs, gen, C, T, self.pair_context, self.parent, log_general,
                                          log_parent_side, float(d[k]), float(theta[k]),
                                          float(theta[k - 1]) if k > 0 else 1.0, ls, ls_par, log_fact, moved, fed)
        state.update(cust=cust.tolist(), tabs=tabs.tolist(), C=C.tolist(), T=T.tolist(),
                     sent=self._sent(tabs, gen))
        self._redraw_sizes(np.flatnonzero(moved | fed), moved, gen, d, seed)
        self._publish()
        return n_moved

    def log_source_weights(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per local pair, the log weight of a table's dish from the general restaurant, log(lam_k G_k(w | u)),
        and from the domain parent before its seating terms, log(1 - lam_k) (times P_0(w) at the unigrams)."""
        with np.errstate(divide="ignore"):  # a weight of 0 (lam drawn as 0 or 1) forbids that side
            log_general = np.log(lam[self.level_of] * self.general_of)
            return log_general, np.log1p(-lam[self.level_of]) + np.where(self.level_of == 0, np.log(self.base_of), 0.0)

    def _sent(self, tables: np.ndarray, general_tables: np.ndarray) -> list[list[int]]:
        """``sent`` from the counts per local pair: per order, its tables from the general restaurant and
        from the domain parent."""
        from_general = np.bincount(self.level_of, general_tables, self.hier.n)
        from_parent = np.bincount(self.level_of, tables - general_tables, self.hier.n)
        return [[int(g), int(p)] for g, p in zip(from_general, from_parent)]

    def _redraw_sizes(self, redo: np.ndarray, moved: np.ndarray, gen: np.ndarray, d: np.ndarray, seed: int) -> None:
        """Draw the table sizes of the pairs ``redo`` from their exact conditional given their customers
        and tables, in random order; a pair in ``moved`` gets its ``gen`` general tables at random
        among them, the others keep their list of sources (any order of exchangeable tables)."""
        from bayeslm.ngram.pitman_yor.domain_table_counts import draw_sizes

        state, shuffle = self._state, random.Random(int(seed)).shuffle
        counts = np.array(state["tabs"], np.int64)[redo]
        sizes = draw_sizes(np.array(state["cust"], np.int64)[redo], counts, d[self.level_of[redo]])
        starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
        for pair, t, at in zip(redo.tolist(), counts.tolist(), starts):
            table_sizes = sizes[at:at + t].tolist()
            shuffle(table_sizes)
            state["sizes"][pair] = table_sizes
            if moved[pair]:
                state["sources"][pair] = [True] * int(gen[pair]) + [False] * (t - int(gen[pair]))

    def _publish(self) -> None:
        h, state = self.hier, self._state
        self.customers, self.tables = np.zeros(h.n_pairs, np.int64), np.zeros(h.n_pairs, np.int64)
        self.customers[self.pairs], self.tables[self.pairs] = state["cust"], state["tabs"]
        self.context_customers, self.context_tables = np.zeros(h.n_contexts, np.int64), np.zeros(h.n_contexts, np.int64)
        self.context_customers[self.contexts], self.context_tables[self.contexts] = state["C"], state["T"]
        self.sizes, self.sent = state["sizes"], np.array(state["sent"], np.int64)

    def general_tables(self) -> np.ndarray:
        """Per union pair, the tables whose dish came from the general restaurant."""
        out = np.zeros(self.hier.n_pairs, np.int64)
        for pair, sources in self._state["sources"].items():
            out[self.pairs[pair]] = sum(sources)
        return out

    def statistics(self) -> list[OrderStatistics]:
        """Per order, the seating's statistics for the likelihood of (d_k, theta_k)."""
        h, out = self.hier, []
        per_order: list[list[int]] = [[] for _ in range(h.n)]
        for pair, table_sizes in self.sizes.items():
            per_order[int(self.level_of[pair])].extend(table_sizes)
        for k in range(1, h.n + 1):
            sizes, size_mult = np.unique(np.asarray(per_order[k - 1], float), return_counts=True)
            C = self.context_customers[h.co[k - 1]:h.co[k]]
            T = self.context_tables[h.co[k - 1]:h.co[k]]
            keep = C > 0
            t_values, t_mult = np.unique(T[keep], return_counts=True)
            c_values, c_mult = np.unique(C[keep], return_counts=True)
            out.append(OrderStatistics(sizes, size_mult.astype(float), t_values.astype(float), t_mult.astype(float),
                                       c_values.astype(float), c_mult.astype(float)))
        return out


class _Step:
    """The moves of one pass over a :class:`DomainSeating`'s state, given (d, theta, lam) and a seed.

    The state is plain Python lists (a pass touches single entries): ``cust``, ``tabs`` per
    local pair, ``C``, ``T`` per local restaurant, ``sizes[pair]`` and ``sources[pair]`` (True:
    the dish came from the general restaurant) per table, ``sent[k]`` the tables of order k
    by source.
    """

    def __init__(self, seating: DomainSeating, d, theta, lam, seed: int):
        state = seating._state
        self.cust, self.tabs, self.C, self.T = state["cust"], state["tabs"], state["C"], state["T"]
        self.sizes, self.sources, self.sent = state["sizes"], state["sources"], state["sent"]
        self.ctx, self.chains = seating.pair_context.tolist(), seating.chains.tolist()
        self.general, self.base = seating.general.tolist(), seating.base.tolist()
        self.level_of, self.column_of = seating.level_of.tolist(), seating.column_of.tolist()
        self.d, self.theta, self.lam = (np.asarray(x, float).tolist() for x in (d, theta, lam))
        self.rnd = random.Random(int(seed)).random
        self.mixes = [0.0] * seating.hier.n

    def predictive(self, j: int, top: int) -> float:
        """P_top(w | u) of column j's dish along its chain, bottom up (``self.mixes[k]``: M_k, k <= top)."""
        cust, tabs, C, T, ctx, chains = self.cust, self.tabs, self.C, self.T, self.ctx, self.chains
        d, theta, lam, general, mixes = self.d, self.theta, self.lam, self.general, self.mixes
        p = self.base[j]
        for k in range(top + 1):
            pair = chains[k][j]
            u = ctx[pair]
            mixes[k] = mix = lam[k] * general[k][j] + (1.0 - lam[k]) * p
            p = ((cust[pair] - d[k] * tabs[pair] + (theta[k] + d[k] * T[u]) * mix) / (theta[k] + C[u])
                 if C[u] > 0 else mix)
        return p

    def add(self, j: int, top: int) -> None:
        """Seat one customer of column j's pair at order ``top`` + 1 (cascading down on new tables)."""
        self.predictive(j, top)
        self.seat_down(j, top)

    def seat_down(self, j: int, top: int) -> None:
        """Seat one customer at order ``top`` + 1 with ``self.mixes`` of its chain already computed."""
        cust, tabs, C, T, ctx, chains, rnd = self.cust, self.tabs, self.C, self.T, self.ctx, self.chains, self.rnd
        d, theta, lam, general, mixes = self.d, self.theta, self.lam, self.general, self.mixes
        for k in range(top, -1, -1):
            pair = chains[k][j]
            u = ctx[pair]
            old = cust[pair] - d[k] * tabs[pair]
            joins = C[u] > 0 and rnd() * (old + (theta[k] + d[k] * T[u]) * mixes[k]) < old
            cust[pair] += 1
            C[u] += 1
            if joins:
                _join_table(self.sizes[pair], d[k], rnd() * old)
                return
            tabs[pair] += 1
            T[u] += 1
            from_general = rnd() * mixes[k] < lam[k] * general[k][j]
            self.sizes.setdefault(pair, []).append(1)
            self.sources.setdefault(pair, []).append(from_general)
            self.sent[k][0 if from_general else 1] += 1
            if from_general:
                return

    def remove(self, j: int, top: int) -> None:
        """Remove one customer of column j's pair at order ``top`` + 1, chosen uniformly, and every
        table it leaves empty down the domain parents."""
        cust, tabs, C, T, ctx, chains, rnd = self.cust, self.tabs, self.C, self.T, self.ctx, self.chains, self.rnd
        for k in range(top, -1, -1):
            pair = chains[k][j]
            u = ctx[pair]
            table_sizes = self.sizes[pair]
            r = rnd() * cust[pair]
            i = 0
            while i < len(table_sizes) - 1 and r >= table_sizes[i]:
                r -= table_sizes[i]
                i += 1
            table_sizes[i] -= 1
            cust[pair] -= 1
            C[u] -= 1
            if table_sizes[i] > 0:
                return
            del table_sizes[i]
            from_general = self.sources[pair].pop(i)
            tabs[pair] -= 1
            T[u] -= 1
            self.sent[k][0 if from_general else 1] -= 1
            if from_general:
                return

    def redraw_source(self, pair: int, index: int) -> None:
        """Redraw where table ``index`` of ``pair`` took its dish, given everything else: the general
        restaurant with weight ``lam_k G_k(w | u)``, the domain parent with weight
        ``(1 - lam_k) P_{k-1}(w | u')`` (and then it is seated there as a customer)."""
        k, j = self.level_of[pair], self.column_of[pair]
        sources = self.sources[pair]
        was_general = sources[index]
        self.sent[k][0 if was_general else 1] -= 1
        if not was_general and k > 0:
            self.remove(j, k - 1)
        general, parent = self.source_weights(j, k)
        to_general = self.rnd() * (general + parent) < general
        sources[index] = to_general
        self.sent[k][0 if to_general else 1] += 1
        if not to_general and k > 0:
            self.seat_down(j, k - 1)

    def source_weights(self, j: int, k: int) -> tuple[float, float]:
        """The weights of a new table's dish source at order k + 1 for column j's dish: the general
        restaurant's ``lam_k G_k(w | u)`` and the domain parent's ``(1 - lam_k) P_{k-1}(w | u')`` (the
        base measure below the unigrams); fills ``self.mixes`` below order k + 1."""
        parent = self.predictive(j, k - 1) if k > 0 else self.base[j]
        return self.lam[k] * self.general[k][j], (1.0 - self.lam[k]) * parent


def _join_table(table_sizes: list[int], d: float, r: float) -> None:
    """Seat a customer at the table where ``r`` (uniform on [0, sum(size - d))) falls."""
    for i, size in enumerate(table_sizes):
        r -= size - d
        if r < 0:
            table_sizes[i] += 1
            return
    table_sizes[-1] += 1  # rounding at the far end
