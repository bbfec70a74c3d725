using OnnxQuant.IO;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Fixtures;

/// <summary>
/// A function-preserving outlier twin of a trained model (docs/architecture.md, "Outlier twins"; the inverse of SmoothQuant): for every
/// norm that feeds linears, channel j of gamma is multiplied by <see cref="Factor"/> and row j of every consuming weight
/// divided by it, for a few fixed channels. The FP32 outputs stay the same up to rounding; the linears' inputs now carry
/// channels ~50x larger than the rest, as in real LLMs. The small Austen LM has almost no outliers of its own.
/// Used by the scheme benchmark and the numeric diff tests.
/// </summary>
public static class OutlierTwin
{
    public const float Factor = 50f;

    /// <summary>Writes the twin of <paramref name="source"/> to <paramref name="target"/>; returns how many norms were scaled.</summary>
    public static int Write(string source, string target, int channelCount = 3, int seed = 0)
    {
        using var model = ModelFile.Load(source);
        var groups = SmoothingGroups.Find(model.Graph).Where(g => g.Producer.Kind == FoldKind.NormGamma && g.Producer.IsExact(model.Graph)).ToList();
        if (groups.Count == 0)
            throw new InvalidOperationException($"{source}: no norm feeds a linear, so there is nowhere to put outliers");
        int width = groups[0].Channels;
        var channels = Enumerable.Range(0, width).OrderBy(c => Hash(c, seed)).Take(channelCount).ToArray();
        foreach (var group in groups)
        {
            // The fold divides channel j by s_j: s_j = 1/Factor multiplies the norm output and divides the weight rows.
            var scale = Enumerable.Repeat(1f, group.Channels).ToArray();
            foreach (var c in channels.Where(c => c < scale.Length))
                scale[c] = 1f / Factor;
            group.Apply(model.Graph, scale);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(target))!);
        ModelFile.Save(model, target);
        return groups.Count;
    }

    // A fixed shuffle independent of the runtime's hash seed.
    private static ulong Hash(int value, int seed)
    {
        ulong x = (ulong)(value + 1) * 0x9E3779B97F4A7C15UL ^ (ulong)seed;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9UL;
        return x ^ (x >> 29);
    }
}
