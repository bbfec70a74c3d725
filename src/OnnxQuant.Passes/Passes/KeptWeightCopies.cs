using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Passes;

/// <summary>
/// Before the last pass of a pipeline computes, starts copying the input's large weights that it leaves alone (the
/// embedding, a head kept in float) into the spill file that becomes the output's data file
/// (<see cref="SpillFile.TryPrecopy"/>): they reach the disk behind the pass's own writes instead of in the save, where
/// they were the one step left on a single core (4-layer 7B-wide `awq --method rtn`: 0.5 GB, about 0.4 s).
/// </summary>
internal static class KeptWeightCopies
{
    /// <summary>Starts the copies for the main graph of a rewrite pass whose quantizable candidates are <paramref name="candidates"/>; returns how many.</summary>
    public static int Start(Graph graph, PassContext context, IEnumerable<LinearCandidate> candidates)
    {
        if (!context.FinalPass || graph.Spill is not { CanBecomeNamed: true } spill)
            return 0;
        // Every input of a linear the pass may rewrite could be replaced; only the others are copied.
        var replaced = candidates.Where(c => c.Quantizable).SelectMany(c => c.Node.Input).ToHashSet(StringComparer.Ordinal);
        // The save adopts the spill file only if every byte in it is live: when this pass will replace a tensor an
        // earlier pass wrote there, or some are dead already, the save copies everything and a copy now is wasted.
        if (graph.Initializers.Values.Any(t => replaced.Contains(t.Name) && spill.OffsetOf(t) is not null)
            || (spill.Length > 0 && !spill.TiledExactlyBy(graph.Initializers.Values)))
            return 0;
        int started = 0;
        foreach (var tensor in graph.Initializers.Values)
            if (!replaced.Contains(tensor.Name) && tensor.ByteLength >= graph.SpillThreshold && tensor.MappedLocation is { } at
                && spill.TryPrecopy(at.File, at.Offset, tensor.ByteLength))
                started++;
        return started;
    }
}
