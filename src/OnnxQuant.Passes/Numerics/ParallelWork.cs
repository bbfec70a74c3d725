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
        try
        {
            Parallel.For(0, count, body);
        }
        catch (AggregateException e) when (e.Flatten().InnerExceptions.OfType<OnnxQuantException>().FirstOrDefault() is { } first)
        {
            ExceptionDispatchInfo.Throw(first);
        }
    }
}
