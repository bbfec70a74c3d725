using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Numerics;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Smoothing;
using OnnxQuant.Statistics;

namespace OnnxQuant.Passes;

/// <summary>Which groups SmoothQuant smooths.</summary>
public enum SmoothingScope
{
    /// <summary>Every group: norm-fed inputs, o_proj/down_proj through their path folds, and (with Mul insertion) the rest.</summary>
    All,
    /// <summary>Only inputs a normalization produces (what the SmoothQuant reference implementation smooths).</summary>
    NormInputs,
}

/// <summary>Settings of <see cref="SmoothQuantPass"/>.</summary>
public sealed record SmoothQuantOptions
{
    /// <summary>A fixed alpha in [0, 1], or null to search one per group (<see cref="AlphaSearch"/>).</summary>
    public float? Alpha { get; init; }

    /// <summary>Smooth groups whose activation cannot take s in place through a new Mul(1/s); otherwise leave them.</summary>
    public bool InsertMul { get; init; }

    /// <summary>Which linears will be quantized; a group none of whose consumers is quantized is left alone.</summary>
    public LinearSelection Selection { get; init; } = LinearSelection.All;

    /// <summary>How the W8A8 graph will quantize (what the alpha search measures).</summary>
    public FakeQuantScheme FakeQuant { get; init; } = new();

    public SmoothingScope Scope { get; init; } = SmoothingScope.All;

    /// <summary>Candidates of the alpha search; null for 0.30..0.95 step 0.05.</summary>
    public IReadOnlyList<float>? AlphaGrid { get; init; }
}

/// <summary>What SmoothQuant did with a group: applied s (folded or through an inserted Mul), or left it and why.</summary>
public enum SmoothingStatus
{
    Folded,
    Inserted,
    NotNormFed,
    NoStatistics,
    NotQuantized,
    NeedsMul,
    NotExact,
    FloatChannelsOnly,
    NoGain,
}

/// <summary>What the pass did with one smoothing group.</summary>
public sealed record SmoothingDecision(
    string Activation, ProducerKind ProducerKind, FoldKind FoldKind, string Target, IReadOnlyList<string> Consumers,
    SmoothingStatus Status, float? Alpha, float RatioBefore, float RatioAfter, double? ErrorUnsmoothed, double? ErrorSmoothed)
{
    /// <summary>Channels the W8A8 graph computes in floating point (auto alpha with float channels allowed).</summary>
    public IReadOnlyList<int> FloatChannels { get; init; } = [];

    /// <summary>True when s was applied (folded or through an inserted Mul).</summary>
    public bool Applied => Status is SmoothingStatus.Folded or SmoothingStatus.Inserted;

    /// <summary>"folded", "inserted", "left: no statistics": the status as the summary and --json say it.</summary>
    public string StatusText => Status switch
    {
        SmoothingStatus.Folded => "folded",
        SmoothingStatus.Inserted => "inserted",
        SmoothingStatus.NotNormFed => "left: not norm-fed (--scope norm)",
        SmoothingStatus.NoStatistics => "left: no statistics",
        SmoothingStatus.NotQuantized => "left: not quantized",
        SmoothingStatus.NeedsMul => "left: needs --insert-mul",
        SmoothingStatus.NotExact => "left: fold would not be exact",
        SmoothingStatus.FloatChannelsOnly => "left: float channels only",
        SmoothingStatus.NoGain => "left: smoothing does not help",
        _ => Status.ToString(),
    };
}

/// <summary>SmoothQuant's decision on every smoothing group (left in the pipeline's <see cref="Passes.AnalysisStore"/>).</summary>
public sealed record SmoothingReport(IReadOnlyList<SmoothingDecision> Decisions);

/// <summary>
/// SmoothQuant: for every smoothing group, <c>s_j = max|X_j|^a / max|W_j|^(1-a)</c> from the calibrated activation
/// maxima and the consumers' weight rows, folded into the producer (norm gamma/beta, a linear's columns, or an inserted
/// Mul) and the consumers' rows. Alpha is fixed or searched per group on the recorded rows. The model computes the same
/// function afterwards, up to float rounding; the pipeline's <see cref="ActivationRanges"/> follows the rescaled activations for the rewrite.
/// </summary>
public sealed class SmoothQuantPass : IGraphPass
{
    private readonly SmoothQuantOptions _options;

    /// <summary>Reads <see cref="CalibrationStats"/> and <see cref="ActivationRanges"/> from the pipeline's analyses; rescales the ranges it smooths.</summary>
    public SmoothQuantPass(SmoothQuantOptions options)
    {
        if (options.Alpha is { } a && !(a >= 0f && a <= 1f))
            throw new OnnxQuantException(null, $"--alpha must be between 0 and 1 or 'auto' (got {a})", ExitCode.Usage);
        _options = options;
    }

    public string Name => "smoothquant";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var stats = context.Analyses.Get<CalibrationStats>(Name);
        var ranges = context.Analyses.Get<ActivationRanges>(Name);
        var graph = model.Graph;
        var groups = SmoothingGroups.Find(graph);
        var decisions = new List<SmoothingDecision>();
        bool changed = false;
        for (int i = 0; i < groups.Count; i++)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, i, groups.Count, groups[i].Activation));
            var decision = Smooth(model, groups[i], stats, ranges);
            decisions.Add(decision);
            changed |= decision.Applied;
        }
        context.Progress?.Report(new PassProgress(Name, groups.Count, groups.Count));
        context.Analyses.Set(new SmoothingReport(decisions));
        SmoothingRecord.Append(model, decisions.Zip(groups).Where(p => p.First.Applied).Select(p => new SmoothedGroup(p.First.Activation,
            SmoothingMethod.SmoothQuant, p.First.FoldKind, p.First.Target, p.First.Consumers, p.First.Alpha, p.First.FloatChannels.Count,
            SmoothedGroup.RescaledBy(p.Second))).ToList());
        return new PassResult(changed, decisions.Select(ToRow).ToList())
        {
            Metrics = new Dictionary<string, double>
            {
                ["groups"] = groups.Count,
                ["folded"] = decisions.Count(d => d.Status == SmoothingStatus.Folded),
                ["inserted"] = decisions.Count(d => d.Status == SmoothingStatus.Inserted),
            },
        };
    }

    private SmoothingDecision Smooth(OnnxModel model, SmoothingGroup group, CalibrationStats calibration, ActivationRanges ranges)
    {
        var graph = model.Graph;
        var consumers = group.CurrentConsumers(graph);
        var names = group.ConsumerNames;
        var stats = calibration.Get(group.Activation);
        float ratio = stats is null ? float.NaN : SmoothQuantScales.MaxOverMedian(stats.AbsMax);
        SmoothingDecision Left(SmoothingStatus why, float? alpha = null, double? e0 = null, double? e1 = null) =>
            new(group.Activation, group.ProducerKind, group.Producer.Kind, group.Producer.Description, names, why, alpha, ratio, ratio, e0, e1);
        // An activation smoothing leaves still gets LLM.int8()'s outlier channels when --float-outliers asks for them.
        SmoothingDecision LeftWithOutliers(SmoothingStatus why)
        {
            var outliers = stats is not null && stats.Channels == group.Channels && group.Ties is null
                ? _options.FakeQuant.OutlierChannels(stats.AbsMax) : [];
            ranges.SetFloatChannels(group.Activation, outliers);
            return Left(why) with { FloatChannels = outliers };
        }

        if (_options.Scope == SmoothingScope.NormInputs && !IsNorm(group.ProducerKind))
            return LeftWithOutliers(SmoothingStatus.NotNormFed);
        if (stats is null || stats.Channels != group.Channels)
            return Left(SmoothingStatus.NoStatistics);
        var quantized = consumers.Where(c => _options.Selection.IsQuantized(graph, c)).ToList();
        var quantizedInBodies = group.BodyConsumers.Where(c => BodyConsumers.Read(graph, c, (body, linear) =>
            _options.Selection.IsQuantized(body, linear, c.Scope))).ToList();
        if (quantized.Count + quantizedInBodies.Count == 0)
            return Left(SmoothingStatus.NotQuantized);
        if (!group.IsFoldable && !_options.InsertMul)
            return LeftWithOutliers(SmoothingStatus.NeedsMul);
        if (!group.Producer.IsExact(graph))
            return LeftWithOutliers(SmoothingStatus.NotExact);

        // Tied channels (a KV repeat) act as one channel: their maxima pooled give them one s, and none stays in float.
        var ties = group.Ties;
        var absMax = ties?.MaxPerClass(stats.AbsMax) ?? stats.AbsMax;
        var weightMax = group.WeightRowAbsMax(graph);
        if (ties is not null)
            weightMax = ties.MaxPerClass(weightMax);
        var scheme = ties is null ? _options.FakeQuant : _options.FakeQuant with { MaxFloatChannels = 0, OutlierThreshold = null };
        float alpha;
        double? before = null, after = null;
        IReadOnlyList<int> floatChannels = [];
        if (_options.Alpha is { } fixedAlpha)
            (alpha, floatChannels) = (fixedAlpha, scheme.OutlierChannels(absMax));
        else
        {
            var choice = Search(graph, stats, absMax, quantized, quantizedInBodies, weightMax, scheme);
            (before, after, floatChannels) = (choice.UnsmoothedError, choice.Error, choice.FloatChannels);
            if (choice.Alpha is not { } chosen)
            {
                // No smoothing, but float channels may still pay off; the rewrite reads them under the unchanged name.
                ranges.SetFloatChannels(group.Activation, floatChannels);
                return Left(floatChannels.Count > 0 ? SmoothingStatus.FloatChannelsOnly : SmoothingStatus.NoGain, null, before, after)
                    with { FloatChannels = floatChannels };
            }
            alpha = chosen;
        }
        // Float channels stay out of the balance: s = 1 there (they never reach the int8 product).
        var activationMax = (float[])absMax.Clone();
        foreach (int j in floatChannels)
            activationMax[j] = 0;
        var s = SmoothQuantScales.Compute(activationMax, weightMax, alpha);
        if (ties is not null)
            activationMax = stats.AbsMax;
        group.Apply(graph, s);
        string now = group.CurrentActivation;
        ranges.Rescale(group.Activation, now, s);
        ranges.SetFloatChannels(now, floatChannels);
        float ratioAfter = SmoothQuantScales.MaxOverMedian(SmoothQuantScales.Divide(activationMax, s));
        return new SmoothingDecision(group.Activation, group.ProducerKind, group.Producer.Kind, group.Producer.Description, names,
            group.IsFoldable ? SmoothingStatus.Folded : SmoothingStatus.Inserted, alpha, ratio, ratioAfter, before, after) { FloatChannels = floatChannels };
    }

    private static bool IsNorm(ProducerKind kind) => kind is ProducerKind.LayerNorm or ProducerKind.RMSNorm or ProducerKind.SkipLayerNorm
        or ProducerKind.SkipRMSNorm or ProducerKind.DecomposedLayerNorm or ProducerKind.DecomposedRMSNorm;

    private AlphaChoice Search(IR.Graph graph, ActivationStats stats, float[] absMax, IReadOnlyList<LinearNode> quantized,
        IReadOnlyList<BodyConsumer> quantizedInBodies, float[] weightMax, FakeQuantScheme scheme)
    {
        // weightMax (which sets s) comes from the whole weights; only the loss is measured on a sample of wide groups' columns.
        int stride = ColumnSample.Stride(quantized.Sum(c => (long)c.N) + quantizedInBodies.Sum(c => (long)c.N));
        var weights = quantized.Select(c => new SearchWeight(c.Name, LinearWeightTiles.SampleColumns(graph, c, stride, out int n), c.K, n)).ToList();
        // Body linears read the same activation through the same quantizer: they weigh in the loss like the others.
        weights.AddRange(quantizedInBodies.Select(c => BodyConsumers.Read(graph, c, (body, linear) =>
            new SearchWeight(c.QualifiedName, LinearWeightTiles.SampleColumns(body, linear, stride, out int n), linear.K, n))));
        int rows = AlphaSearch.RowsFor(stats.Channels, weights.Sum(w => (long)w.N), stats.SampleRowCount);
        var sample = stats.EvenlySpacedRows(rows, out rows);
        return AlphaSearch.Run(sample, rows, absMax, weights, weightMax, scheme, _options.AlphaGrid);
    }

    private static PassReportRow ToRow(SmoothingDecision d) => new(d.Activation, new Dictionary<string, string>
    {
        ["producer"] = d.ProducerKind.ToString(),
        ["consumers"] = string.Join(", ", d.Consumers),
        ["fold"] = d.Applied ? $"{d.StatusText}: {d.Target}" : d.StatusText,
        ["alpha"] = d.Alpha?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-",
        ["float channels"] = d.FloatChannels.Count == 0 ? "-" : string.Join(" ", d.FloatChannels),
        ["ratio before"] = d.RatioBefore.ToString("0.0", CultureInfo.InvariantCulture),
        ["ratio after"] = d.RatioAfter.ToString("0.0", CultureInfo.InvariantCulture),
    });
}
