"""The Gibbs sweep and the table-count move of the adapted Pitman-Yor LM's domain seating
(bayeslm/ngram/pitman_yor/domain_seating.py, domain_table_counts.py) against the exact posterior of
the seating, enumerated on a tiny graphical hierarchy.

The hierarchy is a bigram over dishes a, b: two domain restaurants x, y, each drawing its new
tables' dishes from the frozen general restaurant at the same context (weight lam_2) or from
the domain's unigram restaurant (1 - lam_2), which draws from the general unigram restaurant
(lam_1) or the base measure (1 - lam_1). The state is, per domain pair, its tables and how
many of them took their dish from the general restaurant; the table sizes are summed out
(generalised Stirling numbers), as in the single-domain model's test (tests/ngram/test_pitman_yor.py).
"""

from __future__ import annotations

import collections
import itertools
import math
from types import SimpleNamespace

import numpy as np
from ngram_samples import log_restaurant, log_stirling, total_variation

from bayeslm.ngram.pitman_yor import domain_seating
from bayeslm.ngram.pitman_yor.domain_seating import DomainSeating

# pairs: 0 a, 1 b (the domain unigram restaurant) | 2 (x, a), 3 (x, b), 4 (y, a)
PAIR_CTX = np.array([0, 0, 1, 1, 2])
PAIR_LEVEL = np.array([0, 0, 1, 1, 1])
PAIR_PARENT = np.array([-1, -1, 0, 1, 0])
TOP_CUSTOMERS = {2: 3, 3: 1, 4: 2}
GENERAL = np.array([0.7, 0.3, 0.6, 0.4, 0.2])  # G_k(w | u) of the frozen general restaurant at each pair
BASE = np.array([0.5, 0.5])  # P_0 of a, b
D, THETA, LAM = np.array([0.3, 0.5]), np.array([0.7, 1.5]), np.array([0.4, 0.6])
#: sweeps of the chain, and the total variation it must stay below: the 756 states' exact posterior
#: against the frequencies of as many independent draws from it is 0.034 (0.036 the largest of 20);
#: the wrong source move below gives 0.41
SWEEPS, TV_LIMIT = 60_000, 0.045


def _log_joint(state: dict, cust: dict) -> float:
    """log p(seating) up to a constant: per pair log S_d(c, t) + log binom(t, g) + g log(lam G)
    + (t - g) log(1 - lam) (times P_0 at the unigrams), per restaurant its seating term."""
    lp = 0.0
    for i, (t, g) in state.items():
        if cust[i] == 0:
            continue
        L = PAIR_LEVEL[i]
        lp += log_stirling(D[L], cust[i], t) + math.log(math.comb(t, g))
        lp += g * math.log(LAM[L] * GENERAL[i]) + (t - g) * math.log(1.0 - LAM[L])
        lp += (t - g) * math.log(BASE[i]) if L == 0 else 0.0
    for u in set(PAIR_CTX.tolist()):
        members = [i for i in state if PAIR_CTX[i] == u]
        C = sum(cust[i] for i in members)
        if C > 0:
            L = PAIR_LEVEL[members[0]]
            lp += log_restaurant(D[L], THETA[L], sum(state[i][0] for i in members), C)
    return lp


def _enumerate_domain_seating() -> dict:
    """Exact posterior of every pair's (tables, tables from the general restaurant), level by level from
    the top (a pair's customers below are its children's tables from the domain parent)."""
    out = {}
    n_pairs = PAIR_CTX.size

    def walk(L: int, state: dict, cust: dict) -> None:
        pairs = [i for i in range(n_pairs) if PAIR_LEVEL[i] == L]
        options = [[(t, g) for t in range(1, cust[i] + 1) for g in range(t + 1)] or [(0, 0)] for i in pairs]
        for choice in itertools.product(*options):
            state2 = {**state, **dict(zip(pairs, choice))}
            if L == 0:
                out[tuple(state2[i] for i in range(n_pairs))] = _log_joint(state2, cust)
                continue
            below = {i: sum(t - g for j, (t, g) in state2.items() if PAIR_PARENT[j] == i)
                     for i in range(n_pairs) if PAIR_LEVEL[i] == L - 1}
            walk(L - 1, state2, {**cust, **below})

    walk(int(PAIR_LEVEL.max()), {}, dict(TOP_CUSTOMERS))
    Z = np.logaddexp.reduce(list(out.values()))
    return {k: math.exp(v - Z) for k, v in out.items()}


class _SourceWithoutParent(domain_seating._Step):
    """A deliberately wrong source move: the domain parent's weight is 1 - lam_k, its predictive left out."""

    def source_weights(self, j: int, k: int) -> tuple[float, float]:
        general, _ = super().source_weights(j, k)
        return general, 1.0 - self.lam[k]


class _TableMoveWithoutWeight(DomainSeating):
    """A deliberately wrong table-count move: a table's dish from the general restaurant weighs G_k, lam_k left out."""

    def log_source_weights(self, lam):
        log_general, log_parent_side = super().log_source_weights(lam)
        return np.log(self.general_of), log_parent_side


def _domain_seating(cls=DomainSeating) -> tuple[DomainSeating, np.ndarray]:
    """The tiny hierarchy's seating machinery (union pair ids are its local ids) and its customers (columns)."""
    hier = SimpleNamespace(pair_ctx=PAIR_CTX, pair_level=PAIR_LEVEL, n=2, n_pairs=PAIR_CTX.size, n_contexts=3,
                           co=np.array([0, 1, 3]))
    chains = np.array([[0, 1, 0], [2, 3, 4]])  # the columns (x, a), (x, b), (y, a): their pairs at order 1, 2
    seating = cls(hier, chains, GENERAL[chains], BASE[chains[0]])
    return seating, np.repeat(np.arange(3), [TOP_CUSTOMERS[p] for p in chains[1]])


def _state_of(seating: DomainSeating) -> tuple:
    from_general = seating.general_tables()
    return tuple((int(seating.tables[i]), int(from_general[i])) for i in range(PAIR_CTX.size))


def _customers(state) -> np.ndarray:
    """Every pair's customers in a state ((tables, general tables) per pair): the unigrams' are the bigrams' tables
    from the domain parent."""
    tables, general = np.array(state).T
    below = tables - general
    return np.array([below[2] + below[4], below[3], *TOP_CUSTOMERS.values()])


def _chain(sweeps: int, seed: int, customers: bool = True, tables: bool = False, start=None) -> collections.Counter:
    """States of a chain of ``sweeps`` steps, each the customer sweep and/or the table-count move, from
    a sequential seating or from ``start`` ((tables, general tables) per pair)."""
    seating, events = _domain_seating()
    rng = np.random.default_rng(seed)
    if start is None:
        seating.seat(events, D, THETA, LAM, seed=seed)
    else:
        seating.place(_customers(start), *np.array(start).T, D, seed=seed)
    seen = collections.Counter()
    for _ in range(sweeps):
        if customers:
            seating.sweep(rng.permutation(events), D, THETA, LAM, seed=int(rng.integers(2**31 - 1)))
        if tables:
            seating.move_table_counts(D, THETA, LAM, seed=int(rng.integers(2**31 - 1)))
        seen[_state_of(seating)] += 1
    from_general = seating.general_tables()
    # the bookkeeping: customers below are the children's tables from the domain parent, totals per restaurant
    below = seating.tables - from_general
    np.testing.assert_array_equal(seating.customers, [below[2] + below[4], below[3], *TOP_CUSTOMERS.values()])
    np.testing.assert_array_equal(seating.context_tables, np.bincount(PAIR_CTX, weights=seating.tables).astype(int))
    np.testing.assert_array_equal(seating.sent.sum(axis=0), [from_general.sum(), below.sum()])
    return seen


def test_the_domain_seating_sweep_leaves_the_exact_posterior_invariant():
    exact = _enumerate_domain_seating()
    seen = _chain(SWEEPS, seed=11)
    assert set(seen) <= set(exact)
    tv = total_variation(seen, exact)
    assert tv < TV_LIMIT, f"total variation {tv:.4f} between sampled and exact seatings ({len(exact)} states)"


def test_a_wrong_move_fails_the_same_check(monkeypatch):
    monkeypatch.setattr(domain_seating, "_Step", _SourceWithoutParent)
    tv = total_variation(_chain(SWEEPS, seed=11), _enumerate_domain_seating())
    assert tv > TV_LIMIT, f"total variation {tv:.4f}: the check does not see a wrong move"


def _moves_from_exact(draws: int, seed: int, cls=DomainSeating) -> tuple[collections.Counter, float]:
    """One table-count move from each of ``draws`` independent draws of the exact posterior: the states it
    reaches (invariance from every state, the ones the move alone cannot reach from a given
    start included), and the share of draws it changed."""
    exact = _enumerate_domain_seating()
    states = list(exact)
    rng = np.random.default_rng(seed)
    seating, _ = _domain_seating(cls)
    seen, changed = collections.Counter(), 0
    for index in rng.choice(len(states), size=draws, p=np.array([exact[s] for s in states])):
        seating.place(_customers(states[index]), *np.array(states[index]).T, D, seed=int(rng.integers(2**31 - 1)))
        seating.move_table_counts(D, THETA, LAM, seed=int(rng.integers(2**31 - 1)))
        seen[_state_of(seating)] += 1
        changed += _state_of(seating) != states[index]
    return seen, changed / draws


def test_the_table_count_move_leaves_the_exact_posterior_invariant():
    exact = _enumerate_domain_seating()
    seen, changed = _moves_from_exact(SWEEPS, seed=5)
    assert set(seen) <= set(exact)
    assert changed > 0.5, f"the move changed only {changed:.0%} of the states"
    tv = total_variation(seen, exact)
    assert tv < TV_LIMIT, f"total variation {tv:.4f} after one table-count move from exact draws"


def test_the_table_count_move_alone_samples_the_exact_posterior_where_it_can_go():
    """Alone the move never opens a table in an empty parent pair nor empties one: from a start where both
    unigram pairs hold customers, its chain samples the exact posterior given that."""
    start = ((1, 1), (1, 0), (2, 1), (1, 0), (1, 0))
    exact = {state: p for state, p in _enumerate_domain_seating().items() if np.all(_customers(state)[:2] > 0)}
    total = sum(exact.values())
    seen = _chain(2 * SWEEPS, seed=13, customers=False, tables=True, start=start)  # it mixes slower than the sweep
    assert set(seen) <= set(exact)
    tv = total_variation(seen, {state: p / total for state, p in exact.items()})
    assert tv < TV_LIMIT, f"total variation {tv:.4f} between the move's chain and the exact posterior there"


def test_the_customer_sweep_and_the_table_count_move_alternated_sample_the_exact_posterior():
    exact = _enumerate_domain_seating()
    tv = total_variation(_chain(SWEEPS, seed=12, tables=True), exact)
    assert tv < TV_LIMIT, f"total variation {tv:.4f} between sampled and exact seatings"


def test_a_wrong_table_count_move_fails_the_same_check():
    seen, _ = _moves_from_exact(SWEEPS, seed=5, cls=_TableMoveWithoutWeight)
    tv = total_variation(seen, _enumerate_domain_seating())
    assert tv > TV_LIMIT, f"total variation {tv:.4f}: the check does not see a wrong table-count move"
