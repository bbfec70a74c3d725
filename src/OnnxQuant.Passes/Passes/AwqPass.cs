using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Smoothing;
using OnnxQuant.Statistics;

namespace OnnxQuant.Passes;

/// <summary>Settings of <see cref="AwqPass"/>.</summary>
public sealed record AwqPassOptions
{
    public AwqOptions Search { get; init; } = new();

    /// <summary>Scale groups whose activation has other readers through a new Mul(1/s) instead of leaving them unscaled.</summary>
    public bool InsertMul { get; init; } = true;

    /// <summary>The linears the rewrite will quantize (the same selection as <see cref="W4RewriteOptions.Selection"/>).</summary>
    public LinearSelection Selection { get; init; } = new();

    /// <summary>Score candidates on the block a group feeds (attention or MLP output), through the <see cref="IBlockEvaluator"/> in the pipeline's analyses; false: group-output loss only.</summary>
    public bool BlockLoss { get; init; }
}

/// <summary>What AWQ did with a group: scaled and/or clipped its weights, found plain RTN best, or left it and why.</summary>
public enum AwqStatus
{
    Scaled,
    Clipped,
    ScaledClipped,
    RtnBest,
    NotQuantized,
    NoStatistics,
    NeedsMul,
    NotExact,
}

/// <summary>What AWQ did with one smoothing group.</summary>
public sealed record AwqDecision(string Activation, string Target, IReadOnlyList<string> Consumers, AwqStatus Status, string Loss,
    float Ratio, double RtnLoss, double AwqLoss, double? ClippedFraction, double Seconds, long Parameters, int Rows)
{
    /// <summary>Where the scale folds (the group's producer).</summary>
    public FoldKind Fold { get; init; }

    /// <summary>AWQ's loss over RTN's on the recorded rows (1 when nothing was applied).</summary>
    public double LossRatio => RtnLoss > 0 ? AwqLoss / RtnLoss : 1;

    public bool IsScaled => Status is AwqStatus.Scaled or AwqStatus.ScaledClipped;

    /// <summary>"scaled+clipped", "rtn best", "left: no statistics": the status as the summary and --json say it.</summary>
    public string StatusText => Status switch
    {
        AwqStatus.Scaled => "scaled",
        AwqStatus.Clipped => "clipped",
        AwqStatus.ScaledClipped => "scaled+clipped",
        AwqStatus.RtnBest => "rtn best",
        AwqStatus.NotQuantized => "left: not quantized",
        AwqStatus.NoStatistics => "left: no statistics",
        AwqStatus.NeedsMul => "left: needs a Mul",
        AwqStatus.NotExact => "left: fold would not be exact",
        _ => Status.ToString(),
    };
}

/// <summary>AWQ's decision on every smoothing group (left in the pipeline's <see cref="AnalysisStore"/>).</summary>
public sealed record AwqReport(IReadOnlyList<AwqDecision> Decisions);

/// <summary>
/// Activation-aware weight quantization, the search half: for each smoothing group, s = mean|X|^r on a grid (r = 0 is
/// plain RTN), chosen by the quantized output error on the recorded rows, folded like SmoothQuant (norm gamma/beta, a
/// preceding linear's columns, v→o and up→down paths, or an inserted Mul), then optionally a per-block clip search
/// (not for q/k) whose result is written as clamped weights. <see cref="W4RewritePass"/> then quantizes what this wrote.
/// </summary>
public sealed class AwqPass : IGraphPass
{
    private readonly AwqPassOptions _options;

    /// <summary>Reads <see cref="CalibrationStats"/> from the pipeline's analyses, and an <see cref="IBlockEvaluator"/> when the options ask for the block loss.</summary>
    public AwqPass(AwqPassOptions options)
    {
        options.Search.Validate();
        _options = options;
    }

    public string Name => "awq";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var stats = context.Analyses.Get<CalibrationStats>(Name);
        var blockEvaluator = _options.BlockLoss ? context.Analyses.Get<IBlockEvaluator>(Name) : null;
        var graph = model.Graph;
        var groups = SmoothingGroups.Find(graph);
        var decisions = new List<AwqDecision>();
        var rescaled = new Dictionary<string, RescaledInput>(StringComparer.Ordinal);
        bool changed = false;
        for (int i = 0; i < groups.Count; i++)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, i, groups.Count, groups[i].Activation));
            var decision = Search(model, groups[i], stats, blockEvaluator, rescaled, context.Cancellation);
            decisions.Add(decision);
            changed |= decision.Status is AwqStatus.Scaled or AwqStatus.Clipped or AwqStatus.ScaledClipped;
        }
        context.Progress?.Report(new PassProgress(Name, groups.Count, groups.Count));
        context.Analyses.Set(new AwqReport(decisions));
        context.Analyses.Set(new InputRescaling(rescaled));
        SmoothingRecord.Append(model, decisions.Zip(groups).Where(p => p.First.IsScaled).Select(p => new SmoothedGroup(p.First.Activation,
            SmoothingMethod.Awq, p.First.Fold, p.First.Target, p.First.Consumers, p.First.Ratio, 0, SmoothedGroup.RescaledBy(p.Second))).ToList());
        var searched = decisions.Where(d => d.Rows > 0).ToList();
        double seconds = searched.Sum(d => d.Seconds);
        double paramTokens = searched.Sum(d => (double)d.Parameters * d.Rows);
        return new PassResult(changed, decisions.Select(ToRow).ToList())
        {
            Metrics = new Dictionary<string, double>
            {
                ["groups"] = groups.Count,
                ["scaled"] = decisions.Count(d => d.IsScaled),
                ["search_seconds"] = seconds,
                ["searched_parameters"] = searched.Sum(d => (double)d.Parameters),
                // Seconds per (parameter x row): what the 7B projection scales up.
                ["seconds_per_parameter_row"] = paramTokens > 0 ? seconds / paramTokens : 0,
            },
        };
    }

    private AwqDecision Search(OnnxModel model, SmoothingGroup group, CalibrationStats calibration, IBlockEvaluator? blockEvaluator,
        Dictionary<string, RescaledInput> rescaled, CancellationToken cancel)
    {
        var graph = model.Graph;
        var clock = Stopwatch.StartNew();
        var all = group.CurrentConsumers(graph);
        var names = group.ConsumerNames;
        // Only the quantized consumers count in the loss; the others take the scale exactly (they stay in float).
        var consumers = all.Where(c => _options.Selection.IsQuantized(graph, c)).ToList();
        // Body linears weigh in the search; they take s with the producer's half of the fold and are not clipped.
        var inBodies = group.BodyConsumers.Where(c => BodyConsumers.Read(graph, c, (body, linear) => _options.Selection.IsQuantized(body, linear, c.Scope))).ToList();
        string target = group.Producer.Description;
        AwqDecision Left(AwqStatus why) => new(group.Activation, target, names, why, "-", 0f, 0, 0, null, clock.Elapsed.TotalSeconds, 0, 0);

        if (consumers.Count + inBodies.Count == 0)
            return Left(AwqStatus.NotQuantized);
        var stats = calibration.Get(group.Activation);
        if (stats is null || stats.Channels != group.Channels || stats.SampleRowCount == 0)
            return Left(AwqStatus.NoStatistics);
        if (!group.IsFoldable && !_options.InsertMul)
            return Left(AwqStatus.NeedsMul);
        if (!group.Producer.IsExact(graph))
            return Left(AwqStatus.NotExact);

        var search = _options.Search with { Quantization = _options.Search.Quantization with { ScaleType = consumers.Count > 0 ? consumers[0].WeightType : inBodies[0].WeightType } };
        var rows = stats.EvenlySpacedRows(search.MaxRows, out int rowCount);
        var view = MatrixView.Of(rows, rowCount, stats.Channels);
        // One whole weight at a time: its duo-scaling sums, then only its column sample is kept (ColumnSample), so a
        // 7B's gate + up (360 MB of fp32) is never held at once.
        long columns = consumers.Sum(c => (long)c.N) + inBodies.Sum(c => (long)c.N);
        int stride = ColumnSample.Stride(columns);
        var sums = search.DuoScaling ? new double[stats.Channels] : null;
        var weights = new List<AwqWeight>();
        void Add(string name, float[] whole, int k, int n)
        {
            if (sums is not null)
                AwqScaleSearch.AddNormalisedWeightSums(whole, n, search.Quantization.BlockSize, sums);
            weights.Add(new AwqWeight(name, ColumnSample.Take(whole, k, n, stride, out int sampled), sampled));
        }
        foreach (var c in consumers)
            Add(c.Name, c.ReadWeightKN(graph), c.K, c.N);
        foreach (var c in inBodies)
            Add(c.QualifiedName, BodyConsumers.Read(graph, c, (body, linear) => linear.ReadWeightKN(body)), c.K, c.N);
        var weightMeans = sums is null ? null : AwqScaleSearch.MeansFromSums(sums, columns);
        long parameters = consumers.Sum(c => (long)c.K * c.N) + inBodies.Sum(c => (long)c.K * c.N);

        var blockLoss = blockEvaluator?.TryCreate(model, group);
        string lossKind = blockLoss is null ? "group output" : $"block ({blockLoss.Description})";
        AwqScaleResult result;
        try
        {
            result = AwqScaleSearch.Search(view, stats.MeanAbs, weights, search, blockLoss is null ? null : s => blockLoss.Loss(s, search.Quantization), cancel,
                group.Ties is { } ties ? ties.GeometricMean : null, weightMeans);
        }
        finally
        {
            blockLoss?.Dispose();
        }

        bool scaled = result.Ratio > 0f;
        if (scaled)
        {
            group.ApplyToProducer(graph, result.Scales);
            foreach (var name in names)
                rescaled[name] = new RescaledInput(group.Activation, result.Scales);
        }

        MatrixView? clipRows = null;
        if (search.Clip)
        {
            var scaledRows = rows;
            if (scaled)
            {
                scaledRows = new float[rows.Length];
                for (int r = 0; r < rowCount; r++)
                    TensorPrimitives.Divide(rows.AsSpan(r * stats.Channels, stats.Channels), result.Scales, scaledRows.AsSpan(r * stats.Channels, stats.Channels));
            }
            clipRows = MatrixView.Of(scaledRows, rowCount, stats.Channels);
        }
        double? clipped = ScaleAndClip(graph, group, scaled ? result.Scales : null, clipRows, search, _options.Selection, cancel);
        var status = (scaled, clipped > 0) switch
        {
            (true, true) => AwqStatus.ScaledClipped,
            (true, false) => AwqStatus.Scaled,
            (false, true) => AwqStatus.Clipped,
            _ => AwqStatus.RtnBest,
        };
        return new AwqDecision(group.Activation, target, names, status, lossKind, result.Ratio, result.RtnLoss, result.BestLoss, clipped,
            clock.Elapsed.TotalSeconds, parameters, rowCount) { Fold = group.Producer.Kind };
    }

    /// <summary>
    /// The consumers' half of the fold (rows times s, every consumer) and the clip search (the quantized consumers that
    /// are not query/key projections) in one read-modify-write per weight: a 7B MLP weight is 180 MB as fp32, and
    /// reading and writing it once per step held two such copies and their encodings at once. Returns the fraction of
    /// blocks clipped, or null without <paramref name="clipRows"/>.
    /// </summary>
    private static double? ScaleAndClip(Graph graph, SmoothingGroup group, float[]? scales, MatrixView? clipRows, AwqOptions search,
        LinearSelection selection, CancellationToken cancel)
    {
        long blocks = 0, clippedBlocks = 0;
        foreach (var consumer in group.CurrentConsumers(graph))
        {
            cancel.ThrowIfCancellationRequested();
            bool clip = clipRows is not null && !AttentionRoles.IsQueryOrKey(graph, consumer) && selection.IsQuantized(graph, consumer);
            if (scales is null && !clip)
                continue;
            var w = consumer.ReadWeightKN(graph);
            bool changed = scales is not null;
            if (scales is not null)
                SmoothingGroup.MultiplyRows(w, consumer.K, consumer.N, scales);
            if (clip)
            {
                var result = AwqClipSearch.Search(clipRows!.Value, w, consumer.N, search, cancel);
                blocks += result.Ratios.Length;
                int cut = result.Ratios.Count(r => r < 1f);
                clippedBlocks += cut;
                if (cut > 0)
                {
                    AwqClipSearch.ApplyClip(w, consumer.K, consumer.N, result.Ratios, search.Quantization);
                    changed = true;
                }
            }
            if (changed)
                ConstantEdits.RewriteWeight(graph, consumer, w);
        }
        if (clipRows is null)
            return null;
        return blocks == 0 ? 0 : (double)clippedBlocks / blocks;
    }

    private static PassReportRow ToRow(AwqDecision d)
    {
        string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
        var columns = new Dictionary<string, string>
        {
            ["target"] = d.Target,
            ["consumers"] = string.Join(", ", d.Consumers),
            ["status"] = d.StatusText,
        };
        if (d.Rows > 0)
        {
            columns["loss"] = d.Loss;
            columns["r"] = F(d.Ratio, "0.00");
            columns["rtn_loss"] = F(d.RtnLoss, "g4");
            columns["awq_loss"] = F(d.AwqLoss, "g4");
            columns["awq/rtn"] = F(d.LossRatio, "0.000");
            if (d.ClippedFraction is { } c) columns["clipped_blocks"] = F(c, "P1");
            columns["seconds"] = F(d.Seconds, "0.000");
        }
        return new PassReportRow(d.Activation, columns);
    }
}
