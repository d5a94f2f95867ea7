"""Charts (plotly): certified radius versus β, grouped bars, lines, break radii against the
certified radius, the model's top predictions."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .style import _FONT, CERTIFIED, PALETTE

__all__ = ["beta_curve_figure", "bars_figure", "lines_figure", "break_radius_figure", "prediction_figure"]


def beta_curve_figure(curves: list[dict], title: str | None = None, height: int = 360,
                      unit: str = "ℓ2", log_y: bool = False) -> go.Figure:
    """Certified radius versus β, one line per certificate.

    Args:
        curves: dicts with ``name``, ``beta`` (list), ``radius`` (list) and optional
            ``dash`` (True for comparison-only forms such as the equal-level one, or a plotly
            dash name such as ``"dot"``), ``marker`` (symbol) and ``width``. Curves are drawn
            in order (later ones on top); infinite radii are left out of the line.
    """
    fig = go.Figure()
    for i, c in enumerate(curves):
        dash = c.get("dash")
        dash = dash if isinstance(dash, str) else ("dash" if dash else "solid")
        y = [None if r is None or not np.isfinite(r) else r for r in c["radius"]]
        fig.add_trace(go.Scatter(
            x=list(c["beta"]), y=y, mode="lines+markers", name=c["name"],
            line=dict(color=c.get("color", PALETTE[i % len(PALETTE)]), width=c.get("width", 2.5), dash=dash),
            marker=dict(size=8, symbol=c.get("marker", "circle")), hovertemplate="β = %{x:.2f}<br>radius %{y:.4g}<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(title="β (fraction of the top-k that must stay)", autorange="reversed",
                     gridcolor="#e5e5e5")
    fig.update_yaxes(title=f"certified radius ({unit})", type="log" if log_y else "linear",
                     rangemode="tozero", gridcolor="#e5e5e5")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)), font=_FONT,
                      legend=dict(orientation="h", yanchor="top", y=-0.32, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def bars_figure(categories: list[str], series: list[dict], title: str | None = None,
                height: int = 340, y_title: str = "top-k intersection", y_range=(0, 1.15)) -> go.Figure:
    """Grouped bars: one group per category, one bar per series (``name``, ``values``, ``color``)."""
    fig = go.Figure()
    for i, s in enumerate(series):
        fig.add_trace(go.Bar(x=categories, y=list(s["values"]), name=s["name"],
                             marker_color=s.get("color", PALETTE[i % len(PALETTE)]),
                             text=[f"{v:.2f}" if v is not None and np.isfinite(v) else "" for v in s["values"]],
                             textposition="outside",
                             hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="group", height=height, font=_FONT,
                      margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    fig.update_yaxes(title=y_title, range=list(y_range) if y_range else None, gridcolor="#e5e5e5",
                     tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0] if y_range and y_range[1] > 1 else None)
    return fig


def lines_figure(series: list[dict], x_title: str, y_title: str, title: str | None = None,
                 height: int = 360, log_x: bool = True, y_range=None) -> go.Figure:
    """Lines over a shared x axis: each series has ``name``, ``x``, ``y`` and optional
    ``color``/``dash``."""
    fig = go.Figure()
    for i, s in enumerate(series):
        fig.add_trace(go.Scatter(x=list(s["x"]), y=list(s["y"]), mode="lines+markers", name=s["name"],
                                 line=dict(color=s.get("color", PALETTE[i % len(PALETTE)]), width=2.5,
                                           dash=s.get("dash", "solid")),
                                 marker=dict(size=7),
                                 hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear", gridcolor="#e5e5e5")
    if log_x:
        xs = sorted({float(v) for s in series for v in s["x"]})
        fig.update_xaxes(tickvals=xs, ticktext=[f"{v:g}" for v in xs])
    fig.update_yaxes(title=y_title, range=list(y_range) if y_range else None, gridcolor="#e5e5e5",
                     rangemode="tozero")
    fig.update_layout(height=height, font=_FONT, margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      legend=dict(orientation="h", yanchor="top", y=-0.32, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def break_radius_figure(rows: list[dict], certified: float, x_title: str, title: str | None = None,
                        height: int = 230, budget: float | None = None) -> go.Figure:
    """Each method's break radius on one (log) budget axis, the certified radius a vertical line.

    ``rows``: ``name``, ``broken`` and ``radius`` (the break radius; when not broken, the
    largest budget tried, drawn as an arrow "not broken up to"), ``color``; values in the
    axis unit (``x_title``); ``budget``: an attack budget drawn as a solid black line."""
    fig = go.Figure()
    names = [r["name"] for r in rows]
    for r in rows:
        text = f"breaks at {r['radius']:.3g}" if r["broken"] else f"not broken up to {r['radius']:.3g}"
        fig.add_trace(go.Scatter(
            x=[r["radius"]], y=[r["name"]], mode="markers+text", text=[text],
            textposition="middle left" if not r["broken"] else "middle right", showlegend=False,
            marker=dict(symbol="x-thin" if r["broken"] else "triangle-right", size=18,
                        color=r.get("color", PALETTE[0]), line=dict(width=3, color=r.get("color", PALETTE[0]))),
            hovertemplate=f"{r['name']}: {text}<extra></extra>"))
    if certified > 0:
        fig.add_vline(x=certified, line=dict(color=CERTIFIED, width=2.5, dash="dash"))
        fig.add_annotation(x=math.log10(certified), y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"certified radius {certified:.3g}", font=dict(color=CERTIFIED))
    if budget is not None and budget > 0:
        fig.add_vline(x=budget, line=dict(color="#000000", width=2))
        fig.add_annotation(x=math.log10(budget), y=0.0, yref="paper", yanchor="top", showarrow=False,
                           text=f"your budget {budget:.3g}", font=dict(color="#000000"))
    xs = ([r["radius"] for r in rows if r["radius"] > 0] + ([certified] if certified > 0 else [])
          + ([budget] if budget else []))
    lo, hi = (min(xs), max(xs)) if xs else (0.01, 1.0)
    fig.update_xaxes(title=x_title, type="log", range=[math.log10(lo) - 0.6, math.log10(hi) + 0.6],
                     gridcolor="#e5e5e5", dtick=1, tickfont=dict(size=14))
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], automargin=True, tickfont=dict(size=14))
    fig.update_layout(height=height, font=_FONT, margin=dict(l=10, r=10, t=56 if title else 30, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def prediction_figure(predictions: list[tuple[int, str, float]], height: int = 230) -> go.Figure:
    """Horizontal bars of the top classes and their probabilities."""
    names = [f"{name}" for _, name, _ in predictions][::-1]
    probs = [p for *_, p in predictions][::-1]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=CERTIFIED,
                           text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    # room right of a 100% bar for its label (it was cut at the plot's edge)
    fig.update_xaxes(range=[0, 1.22], tickvals=[0, 0.25, 0.5, 0.75, 1.0], tickformat=".0%", gridcolor="#e5e5e5",
                     title="probability")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), font=_FONT,
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig
