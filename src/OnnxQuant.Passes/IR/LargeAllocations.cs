namespace OnnxQuant.IR;

/// <summary>
/// Keeps a pass's garbage from piling up. A pass over a multi-GB model allocates a few hundred MB per linear (the fp32
/// weight, its codes, the packed result) and drops them a moment later; .NET frees such large arrays only in a full
/// collection, which it runs rarely when the live heap is small, so the resident set grew to 3-4 such working sets
/// (measured: 0.9-1 GB on a 7B-wide layer). Collecting before each large weight read, when at least that much has been
/// allocated since the last collection, keeps it near one working set; with a small live heap each collection takes
/// milliseconds against seconds of quantization per linear.
/// </summary>
public static class LargeAllocations
{
    /// <summary>Reads smaller than this never trigger a collection.</summary>
    public const long Threshold = 16L << 20;

    private static long _allocatedAtLastCollection;

    /// <summary>Called before allocating <paramref name="bytes"/> for a weight read.</summary>
    public static void BeforeAllocating(long bytes)
    {
        if (bytes < Threshold)
            return;
        long allocated = GC.GetTotalAllocatedBytes(precise: false);
        if (allocated - Interlocked.Read(ref _allocatedAtLastCollection) < bytes)
            return;
        Collect();
    }

    /// <summary>
    /// Called between passes: what a pass dropped is collected before the next one allocates its own working set (the
    /// 4-bit rewrite started on top of AWQ's last group's garbage: the peak of a 4-layer 7B-wide `awq`).
    /// </summary>
    public static void AfterPass()
    {
        if (GC.GetTotalAllocatedBytes(precise: false) - Interlocked.Read(ref _allocatedAtLastCollection) >= Threshold)
            Collect();
    }

    private static void Collect()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
        Interlocked.Exchange(ref _allocatedAtLastCollection, GC.GetTotalAllocatedBytes(precise: false));
    }
}
