"""How many numba threads a crowd step gets: one below ``min_agents``, else whichever of one thread and all the
caller's threads measured faster on this machine lately (results do not depend on it: the kernel is bit-identical
on any thread count). On a machine that other work keeps busy, two threads can be 2-9x slower than one (a
parallel step waits for its slowest thread, which the OS has parked); a measured choice never stays there.

The first choice comes from the cores free of other processes this instant (``procs_running`` in /proc/stat minus
this process's own running threads; the load average lags a minute and counts our own work); after that every
call is timed (the run's cold first call excepted), and the other choice is re-measured on a sub-step of a call
now and then (every ``probe_every`` calls, backing off while it keeps losing), so a wrong pick costs a sub-step.
More threads are never probed while another process holds the cores they would need.
"""
from __future__ import annotations

import os

import numba

__all__ = ["ThreadPicker", "others_running", "usable_cpus"]


def running_now() -> int | None:
    """Threads runnable on the machine this instant, other than the caller (``procs_running`` in /proc/stat,
    which counts the caller itself); None where there is no /proc/stat."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"procs_running"):
                    return max(0, int(line.split()[1]) - 1)
    except OSError:
        return None
    return None


def others_running() -> int | None:
    """Threads of other processes runnable this instant: ``procs_running`` (/proc/stat) minus this process's own
    running threads (``/proc/self/task/*/stat`` in state R, the caller and numba's pool spinning after a parallel
    call among them); None where there is no /proc/stat."""
    now = running_now()
    if now is None:
        return None
    own = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return now
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"R":
                    own += 1
        except (OSError, IndexError):
            pass
    return max(0, now + 1 - own)


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask; the CPU count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ThreadPicker:
    """Chooses the thread count of each kernel call and learns from its wall time (s per agent-step)."""

    def __init__(self, min_agents: int = 1000, probe_every: int = 20, max_probe_every: int = 640) -> None:
        self.min_agents = min_agents
        self.probe_every = probe_every
        self.max_probe_every = max_probe_every
        self._interval = probe_every
        self._calls = 0
        self.rate: dict[int, float] = {}  # threads -> smoothed wall s per agent-step
        self.last_choice = 1
        self.fixed: int | None = None  # set to force a thread count (benchmarks: the old behaviour)
        self._skipped_cold = False  # the first (cold) timing of a run is not used

    def max_threads(self) -> int:
        """The caller's numba thread count (a batch worker pins its own), capped by the cores we may use."""
        return max(1, min(numba.get_num_threads(), usable_cpus()))

    def plan(self, n_agents: int, nsteps: int) -> list[tuple[int, int, bool]]:
        """(threads, sub-steps, is_probe) pieces for one call of ``nsteps`` sub-steps with ``n_agents`` inside."""
        tmax = self.max_threads()
        if self.fixed is not None and n_agents >= self.min_agents:
            self.last_choice = min(self.fixed, tmax)
            return [(self.last_choice, nsteps, False)]
        if n_agents < self.min_agents or tmax == 1:
            self.last_choice = 1
            return [(1, nsteps, False)]
        self._calls += 1
        if not self.rate:  # first call: trust the cores free of other processes; the other choice is measured next
            best = tmax if self._may_probe(tmax) else 1  # other processes now, not a load average that lags
        else:
            best = self._fastest()
        self.last_choice = best
        other = 1 if best == tmax else tmax
        if self.rate and (other not in self.rate or self._calls % self._interval == 0) and self._may_probe(other):
            k = max(1, nsteps // 20)  # a sub-step or so on the other choice, the rest on the best (a probe of
            # two threads beside a busy core runs ~7x slower per sub-step: 2 of 20 cost 6% of a call, session 9)
            return [(other, k, True), (best, nsteps - k, False)] if nsteps > k else [(other, k, True)]
        return [(best, nsteps, False)]

    def _may_probe(self, threads: int) -> bool:
        """Whether a probe on ``threads`` may run now: more threads than one only while no other process holds the
        cores they need (beside a busy core a two-thread probe runs ~7x slower per sub-step and is noisy enough to
        be mistaken for a win: the bench's busy-core rounds, session 9)."""
        if threads == 1:
            return True
        others = others_running()
        if others is None:
            return True
        return usable_cpus() - others >= threads

    def _fastest(self) -> int:
        """The thread count with the lowest measured time per agent-step (``rate`` must not be empty)."""
        return min(self.rate, key=lambda t: self.rate[t])

    def pieces(self, n_agents: int, nsteps: int):
        """Yield ``plan``'s pieces, the caller ``record``-ing each before asking for the next: a piece after a
        probe runs on the choice measured faster once that probe is in. (Choosing it before the probe left a
        wrong first guess in place for the rest of the call: the first guess comes from the load average,
        which counts this process's own last minute of work, so a bench or a long run that just kept one core
        busy guessed one thread free and ran 90% of its next call on one thread: 100k agents 1.14 M agent-steps/s
        against 1.5 M with two threads, session 7.)"""
        after_probe = False
        for threads, k, probe in self.plan(n_agents, nsteps):
            if after_probe and not probe and self.rate:
                threads = self._fastest()
                self.last_choice = threads
            yield threads, k, probe
            after_probe = probe

    def record(self, threads: int, agent_steps: float, wall_s: float, probe: bool = False) -> None:
        """Fold one timed piece into the estimate for ``threads``; a probe that lost backs the probing off."""
        if agent_steps <= 0 or wall_s <= 0:
            return
        if not self.rate and not probe and not self._skipped_cold:
            # the first call of a run touches its arrays for the first time: 1.2-6x slower per agent-step than
            # the calls after it (10k agents, session 9); kept, it made any probe of the other choice look
            # faster and left two threads running beside a busy core (bench: 0.85x one thread)
            self._skipped_cold = True
            return
        r = wall_s / agent_steps
        old = self.rate.get(threads)
        self.rate[threads] = r if old is None else 0.5 * old + 0.5 * r
        if probe:
            lost = self._fastest() != threads
            self._interval = min(self.max_probe_every, 2 * self._interval) if lost else self.probe_every
