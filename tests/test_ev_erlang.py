"""A station fed by Poisson arrivals with exponential plug times behaves as an M/M/c queue (Erlang C)."""
import mesa
import numpy as np
import simpy

from twin.queueing import erlang_c, mean_wait_s
from agents.ev.stations import Station, build_controller


def _replicate(seed: int, c: int, lam: float, mu: float, n_customers: int, warmup: int):
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    model = mesa.Model(seed=seed)
    st = Station(model, env, 0, "s0", 0, 0.0, 0.0, plugs=c, power_kw=22.0)
    build_controller(env, [st], policy="uncontrolled", dt_s=3600.0)
    waits = []

    def customer(dwell):
        out = yield env.process(st.session(5.0, 0.5, 50.0, 22.0, dwell_s=dwell, leave_when_full=False))
        waits.append(out.wait_s)

    def source():
        for _ in range(n_customers):
            yield env.timeout(rng.exponential(1.0 / lam))
            env.process(customer(rng.exponential(1.0 / mu)))

    env.process(source())
    env.run()
    w = np.array(waits[warmup:])
    return w.mean(), (w > 0).mean()


def test_station_matches_erlang_c():
    """Mean wait and P(wait) of 16 replications contain the Erlang C values in their 99% intervals."""
    c, mu = 3, 1.0 / 3600.0
    lam = 0.75 * c * mu  # utilisation 0.75
    reps = [_replicate(s, c, lam, mu, 3000, 300) for s in range(16)]
    mw = np.array([r[0] for r in reps])
    pw = np.array([r[1] for r in reps])
    theory_w, theory_p = mean_wait_s(lam, mu, c), erlang_c(c, lam / mu)
    for sample, theory in ((mw, theory_w), (pw, theory_p)):
        half = 2.95 * sample.std(ddof=1) / np.sqrt(sample.size)  # t(15) 99%
        assert abs(sample.mean() - theory) <= half, (sample.mean(), theory, half)
    # and the interval is informative (not so wide that anything would pass)
    assert 2.95 * mw.std(ddof=1) / 4 < 0.25 * theory_w


def test_erlang_c_limits():
    """Erlang C: one server reduces to rho; a saturated system always waits."""
    assert abs(erlang_c(1, 0.4) - 0.4) < 1e-12
    assert erlang_c(4, 4.0) == 1.0
    assert erlang_c(10, 1.0) < erlang_c(2, 1.0)
