"""The 4x12 cliff of the course notes, registered as ``rlhub/Cliff-v0``.

Unlike Gymnasium's ``CliffWalking-v1`` (where the cliff sends the agent back to the start), a step
into the cliff costs -100 and ends the episode, as in the notes' dynamic-programming, SARSA,
Q-learning and Dyna-Q examples::

    row 0  . . . . . . . . . . . .
    row 1  . . . . . . . . . . . .
    row 2  . . . . . . . . . . . .
    row 3  S C C C C C C C C C C G      S start, C cliff (trap), G goal

Every step costs -1, including the step into the goal; moves off the grid leave the agent in place.
Observations are ``row * 12 + col``; actions are 0 up, 1 down, 2 left, 3 right. The transition
model is exposed as ``P`` (Gymnasium's toy-text convention) for value and policy iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

N_ROWS = 4
N_COLS = 12
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
_MOVES = {UP: (-1, 0), DOWN: (1, 0), LEFT: (0, -1), RIGHT: (0, 1)}
_ARROWS = {UP: "^", DOWN: "v", LEFT: "<", RIGHT: ">"}


def cell_kind(row: int, col: int) -> str:
    """``"ground"``, ``"trap"`` or ``"goal"``."""
    if row != N_ROWS - 1 or col == 0:
        return "ground"
    if col == N_COLS - 1:
        return "goal"
    return "trap"


def to_state(row: int, col: int) -> int:
    return row * N_COLS + col


class CliffEnv(gym.Env):
    """The cliff of the notes: 4x12 grid, -1 per step, -100 and the end for a cliff cell.

    :param start: ``None`` to start each episode at a random row of column 0 (as the notes train),
        or a ``[row, col]`` cell to start from (e.g. ``[3, 0]``, the classic start)
    :param render_mode: ``"ansi"`` (text), ``"human"`` (printed text) or ``"rgb_array"``
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    def __init__(self, start: Sequence[int] | None = None, render_mode: str | None = None) -> None:
        if start is not None:
            if len(start) != 2:
                raise ValueError(f"start must be [row, col], got {start!r}")
            row, col = int(start[0]), int(start[1])
            if not (0 <= row < N_ROWS and 0 <= col < N_COLS) or cell_kind(row, col) != "ground":
                raise ValueError(f"start {start!r} must be a ground cell of the {N_ROWS}x{N_COLS} grid")
            start = (row, col)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.start = start
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(N_ROWS * N_COLS)
        self.action_space = spaces.Discrete(4)
        self.P = self._transition_model()
        self._row, self._col = N_ROWS - 1, 0
        self._last_action: int | None = None

    @staticmethod
    def _move(row: int, col: int, action: int) -> tuple[int, int, float, bool]:
        d_row, d_col = _MOVES[action]
        row = min(max(row + d_row, 0), N_ROWS - 1)
        col = min(max(col + d_col, 0), N_COLS - 1)
        kind = cell_kind(row, col)
        return row, col, (-100.0 if kind == "trap" else -1.0), kind != "ground"

    def _transition_model(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        model: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = {}
        for row in range(N_ROWS):
            for col in range(N_COLS):
                state = to_state(row, col)
                if cell_kind(row, col) != "ground":  # never acted in: the episode ended on entering
                    model[state] = {action: [(1.0, state, 0.0, True)] for action in _MOVES}
                    continue
                model[state] = {}
                for action in _MOVES:
                    next_row, next_col, reward, terminated = self._move(row, col, action)
                    model[state][action] = [(1.0, to_state(next_row, next_col), reward, terminated)]
        return model

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        if self.start is None:
            self._row, self._col = int(self.np_random.integers(N_ROWS)), 0
        else:
            self._row, self._col = self.start
        self._last_action = None
        if self.render_mode == "human":
            self.render()
        return to_state(self._row, self._col), {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        action = int(action)
        if action not in _MOVES:
            raise ValueError(f"action must be 0 (up), 1 (down), 2 (left) or 3 (right), got {action}")
        self._row, self._col, reward, terminated = self._move(self._row, self._col, action)
        self._last_action = action
        if self.render_mode == "human":
            self.render()
        return to_state(self._row, self._col), reward, terminated, False, {}

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self._render_rgb()
        lines = []
        for row in range(N_ROWS):
            cells = []
            for col in range(N_COLS):
                if (row, col) == (self._row, self._col):
                    cells.append("@" if self._last_action is None else _ARROWS[self._last_action])
                else:
                    cells.append({"ground": ".", "trap": "C", "goal": "G"}[cell_kind(row, col)])
            lines.append(" ".join(cells))
        text = "\n".join(lines) + "\n"
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_rgb(self, cell: int = 32) -> np.ndarray:
        colours = {"ground": (230, 230, 230), "trap": (60, 60, 60), "goal": (80, 180, 80)}
        image = np.zeros((N_ROWS * cell, N_COLS * cell, 3), dtype=np.uint8)
        for row in range(N_ROWS):
            for col in range(N_COLS):
                image[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell] = colours[cell_kind(row, col)]
        margin = cell // 4
        image[self._row * cell + margin:(self._row + 1) * cell - margin,
              self._col * cell + margin:(self._col + 1) * cell - margin] = (200, 40, 40)
        image[::cell, :] = 150  # grid lines
        image[:, ::cell] = 150
        return image


def greedy_return(q_table: np.ndarray, start: tuple[int, int] = (N_ROWS - 1, 0), max_steps: int = 200) -> float:
    """Undiscounted return of the greedy policy of ``q_table`` (first of equal values) from ``start``;
    a policy that has not reached the goal or the cliff after ``max_steps`` steps gets its return so far."""
    row, col = start
    total = 0.0
    for _ in range(max_steps):
        action = int(np.argmax(q_table[to_state(row, col)]))
        row, col, reward, terminated = CliffEnv._move(row, col, action)
        total += reward
        if terminated:
            break
    return total


def greedy_path(q_table: np.ndarray) -> str:
    """The greedy action of every cell as arrows (cliff and goal as C and G), for reports."""
    lines = []
    for row in range(N_ROWS):
        line = ""
        for col in range(N_COLS):
            kind = cell_kind(row, col)
            line += _ARROWS[int(np.argmax(q_table[to_state(row, col)]))] if kind == "ground" else {"trap": "C", "goal": "G"}[kind]
        lines.append(line)
    return "\n".join(lines)
