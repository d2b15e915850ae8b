"""Calling user code whose exact signatures are not known: pass what it accepts."""

import asyncio
import inspect


def fit_arguments(func, values, aliases, positional):
    """Chooses the arguments for ``func`` from ``values`` (key -> value).

    A parameter whose name is one of ``aliases[key]`` gets ``values[key]``; the other required
    parameters get, in order, the keys of ``positional`` not used yet; optional parameters
    keep their defaults. Returns ``(args, kwargs)``.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return [values[key] for key in positional], {}
    by_alias = {alias: key for key, names in aliases.items() for alias in names}
    params = [
        p for p in signature.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    chosen = {}
    for param in params:
        key = by_alias.get(param.name.lower())
        if key is not None and key not in chosen.values():
            chosen[param.name] = key
    unused = [key for key in positional if key not in chosen.values()]
    for param in params:
        if param.name in chosen or param.default is not inspect.Parameter.empty:
            continue
        if not unused:
            raise TypeError(
                f"cannot call {getattr(func, '__qualname__', func)}{signature}: "
                f"nothing to pass for its parameter {param.name!r}"
            )
        chosen[param.name] = unused.pop(0)
    args, kwargs = [], {}
    for param in params:
        if param.name not in chosen:
            continue
        value = values[chosen[param.name]]
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[param.name] = value
    return args, kwargs


def call_fitted(func, values, aliases, positional):
    args, kwargs = fit_arguments(func, values, aliases, positional)
    return func(*args, **kwargs)


def call_with_keywords(func, available):
    """Calls ``func`` with the keywords of ``available`` it takes (all of them with ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return func(**available)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return func(**available)
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return func(**{p.name: available[p.name] for p in params if p.kind in keyword_kinds and p.name in available})


async def resolve(result):
    """Awaits ``result`` if it is awaitable (user functions may be sync or async)."""
    if inspect.isawaitable(result):
        return await result
    return result


def run_awaitable_here(result):
    """On a thread with its own event loop: runs ``result`` to completion if awaitable."""
    if inspect.isawaitable(result):
        return asyncio.get_event_loop().run_until_complete(result)
    return result


def describe(exc):
    """``ValueError: boom``; just the type when there is no message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
