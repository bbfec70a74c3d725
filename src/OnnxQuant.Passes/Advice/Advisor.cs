using OnnxQuant.Placement;

namespace OnnxQuant.Advice;

/// <summary>A scheme's expected error over the whole model: the RMS over its linears of the per-linear relative error.</summary>
/// <param name="Available">Whether the target runs the scheme's emitted ops natively.</param>
public sealed record SchemeSummary(AdviceScheme Scheme, double Error, double WorstLinearError, string WorstLinear, int Rank, bool Available);

/// <summary>What `advise` recommends: a scheme, the linears to keep in float, and the model error expected with them kept.</summary>
public sealed record Recommendation(AdviceScheme Scheme, IReadOnlyList<string> KeepInFloat, double ExpectedError, bool MeetsBound, string Why);

public sealed record AdviceReport(DeploymentTarget? Target, double? MaxError, IReadOnlyList<LayerEstimate> Layers,
    IReadOnlyList<SchemeSummary> Schemes, Recommendation Recommendation);

/// <summary>
/// Turns per-layer estimates into a ranking and a recommendation (docs/architecture.md, "advise"). Without a bound: the
/// available scheme of lowest expected error, keeping in float the linears whose error stands out (over 4x that scheme's
/// median linear). With --max-error E: the most compact available scheme (W4 AWQ, W4 RTN, then the W8A8 forms) whose
/// error, after keeping in float at most a tenth of the linears (those above E), is at most E; when none is, the lowest
/// error one.
/// </summary>
public static class Advisor
{
    /// <summary>Most linears a recommendation keeps in float, as a share of the quantizable ones.</summary>
    public const double MaxKeptShare = 0.10;

    /// <summary>Without a bound, a linear is kept in float when its error is this many times the scheme's median.</summary>
    public const double OutlierFactor = 4.0;

    // Smallest emitted model first: 4-bit weights, then 8-bit; among equals, the one that needs no calibration-time search last.
    private static readonly AdviceScheme[] Compactness =
        [AdviceScheme.W4Awq, AdviceScheme.W4Rtn, AdviceScheme.W8A8SmoothQuant, AdviceScheme.W8A8PerToken, AdviceScheme.W8A8Naive];

    public static AdviceReport Advise(IReadOnlyList<LayerEstimate> layers, DeploymentTarget? target, double? maxError)
    {
        var linears = layers.SelectMany(l => l.Linears).ToList();
        if (linears.Count == 0)
            throw new ArgumentException("no quantizable linear had calibration statistics");
        var ranked = AdviceSchemes.All.OrderBy(s => ModelError(linears, s, [])).ToList();
        var schemes = ranked.Select((s, i) =>
        {
            var worst = linears.MaxBy(l => l.Errors[s])!;
            return new SchemeSummary(s, ModelError(linears, s, []), worst.Errors[s], worst.Name, i + 1, Runs(target, s));
        }).OrderBy(s => s.Scheme).ToList();
        var available = ranked.Where(s => Runs(target, s)).ToList();
        return new AdviceReport(target, maxError, layers, schemes, Recommend(linears, available, maxError));
    }

    /// <summary>
    /// Whether the target runs the scheme natively: TensorRT imports only the QDQ form of static W8A8 (no MatMulInteger,
    /// no com.microsoft MatMulNBits); the CPU and CUDA EPs run all five (KernelTable: MatMulInteger s8 x s8 on CUDA, which
    /// the cuda target emits; MatMulNBits on both).
    /// </summary>
    public static bool Runs(DeploymentTarget? target, AdviceScheme scheme) =>
        target != DeploymentTarget.TensorRt || scheme is AdviceScheme.W8A8Naive or AdviceScheme.W8A8SmoothQuant;

    private static Recommendation Recommend(IReadOnlyList<LinearEstimate> linears, IReadOnlyList<AdviceScheme> available, double? maxError)
    {
        int maxKept = (int)Math.Floor(linears.Count * MaxKeptShare);
        if (maxError is not { } bound)
        {
            var best = available[0];
            var errors = linears.Select(l => l.Errors[best]).Order().ToList();
            double median = errors[errors.Count / 2];
            var kept = Worst(linears, best, maxKept).Where(l => l.Errors[best] > OutlierFactor * median).Select(l => l.Name).ToList();
            return new Recommendation(best, kept, ModelError(linears, best, kept), true,
                $"lowest expected error of the schemes the target runs{(kept.Count > 0 ? $"; {kept.Count} linear(s) whose error exceeds {OutlierFactor:0}x the median stay in float" : "")}");
        }
        foreach (var scheme in Compactness.Where(available.Contains))
        {
            var kept = Worst(linears, scheme, maxKept).Where(l => l.Errors[scheme] > bound).Select(l => l.Name).ToList();
            double error = ModelError(linears, scheme, kept);
            if (error <= bound && linears.Where(l => !kept.Contains(l.Name)).All(l => l.Errors[scheme] <= bound))
                return new Recommendation(scheme, kept, error, true,
                    $"the most compact scheme whose expected error is within {bound:0.####}{(kept.Count > 0 ? $" with {kept.Count} linear(s) kept in float" : "")}");
        }
        var fallback = available[0];
        var fallbackKept = Worst(linears, fallback, maxKept).Where(l => l.Errors[fallback] > bound).Select(l => l.Name).ToList();
        return new Recommendation(fallback, fallbackKept, ModelError(linears, fallback, fallbackKept), false,
            $"no scheme the target runs reaches {bound:0.####} keeping at most {MaxKeptShare:P0} of the linears in float; this one comes closest");
    }

    private static IEnumerable<LinearEstimate> Worst(IReadOnlyList<LinearEstimate> linears, AdviceScheme scheme, int count) =>
        linears.OrderByDescending(l => l.Errors[scheme]).Take(count);

    /// <summary>sqrt(mean over linears of the squared relative error), a kept linear counting as exact.</summary>
    public static double ModelError(IReadOnlyList<LinearEstimate> linears, AdviceScheme scheme, IReadOnlyCollection<string> kept) =>
        Math.Sqrt(linears.Average(l => kept.Contains(l.Name) ? 0 : l.Errors[scheme] * l.Errors[scheme]));
}
