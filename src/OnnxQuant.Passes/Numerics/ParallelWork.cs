using System.Runtime.ExceptionServices;

namespace OnnxQuant.Numerics;

/// <summary>Runs independent work items in parallel only when the work is large enough to pay for the scheduling.</summary>
internal static class ParallelWork
{
    /// <summary>Below this many elements one thread is faster than scheduling work items.</summary>
    public const long ParallelThreshold = 1 << 16;

    /// <summary>
    /// Runs <paramref name="body"/> for 0..count-1. A user-facing <see cref="OnnxQuantException"/> thrown by an item is
    /// rethrown as itself (not wrapped in an AggregateException), so callers see the same error either way.
    /// </summary>
    public static void For(int count, long elements, Action<int> body)
    {
        if (elements < ParallelThreshold || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Run(0, count, -1, body);
    }

    /// <summary>
    /// <see cref="Run(int, int, int, Action{int})"/> with a per-thread state from <paramref name="init"/> (a scratch
    /// buffer each worker reuses for all its items).
    /// </summary>
    public static void Run<TLocal>(int from, int to, int maxParallelism, Func<TLocal> init, Action<int, TLocal> body)
    {
        if (maxParallelism == 1)
        {
            var local = init();
            for (int i = from; i < to; i++) body(i, local);
            return;
        }
        UnwrappingUserErrors(() => Parallel.For(from, to, new ParallelOptions { MaxDegreeOfParallelism = maxParallelism }, init,
            (i, _, local) => { body(i, local); return local; }, _ => { }));
    }

    /// <summary>
    /// Runs <paramref name="body"/> for from..to-1 on up to <paramref name="maxParallelism"/> threads (-1: all cores,
    /// 1: in order on this thread), unwrapping a user-facing error as <see cref="For(int, long, Action{int})"/> does.
    /// </summary>
    public static void Run(int from, int to, int maxParallelism, Action<int> body)
    {
        if (maxParallelism == 1)
        {
            for (int i = from; i < to; i++) body(i);
            return;
        }
        UnwrappingUserErrors(() => Parallel.For(from, to, new ParallelOptions { MaxDegreeOfParallelism = maxParallelism }, body));
    }

    // A user-facing error thrown by an item leaves as itself, not inside the AggregateException Parallel.For wraps it in.
    private static void UnwrappingUserErrors(Action run)
    {
        try
        {
            run();
        }
        catch (AggregateException e) when (e.Flatten().InnerExceptions.OfType<OnnxQuantException>().FirstOrDefault() is { } first)
        {
            ExceptionDispatchInfo.Throw(first);
        }
    }
}
