using OnnxQuant.Awq;
using Google.Protobuf;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Awq;

/// <summary>
/// Calibrates a fixture on seeded random tokens, runs a pipeline on a fresh copy and compares the result with the
/// float model in ONNX Runtime CPU on other (held-out) tokens.
/// </summary>
internal sealed class AwqFixtureHarness
{
    public AwqFixtureHarness(FixtureOptions options, int samples = 8, int sequence = 32)
    {
        Options = options;
        var rng = new Random(options.Seed + 99);
        var windows = Enumerable.Range(0, samples).Select(_ => Enumerable.Range(0, sequence).Select(_ => rng.Next(options.Vocab)).ToArray()).ToList();
        using var model = FixtureModels.BuildModel(options);
        var data = new CalibrationDataset(windows, sequence, "random tokens", "none");
        Stats = Calibrator.Run(model, data, new CalibrationOptions { SampleRowsPerTensor = samples * sequence },
            new SessionSettings { Device = ExecutionDevice.Cpu, Threads = 1 }).Stats;
        HeldOut = FixtureFeeds.For(options, batch: 2, seq: 24, seed: 7);
        Reference = Run(FixtureModels.Build(options));
    }

    public FixtureOptions Options { get; }

    public CalibrationStats Stats { get; }

    public Dictionary<string, OrtFeed> HeldOut { get; }

    /// <summary>The float model's outputs on the held-out tokens.</summary>
    public Dictionary<string, OrtResult> Reference { get; }

    /// <summary>The analyses (and the passes' reports) of the last <see cref="Apply"/>.</summary>
    public AnalysisStore Last { get; private set; } = new();

    /// <summary>An <see cref="IBlockEvaluator"/> the next pipelines carry (AWQ's block loss).</summary>
    public IBlockEvaluator? BlockEvaluator { get; set; }

    /// <summary>An <see cref="IOutputErrorProbe"/> the next pipelines carry (mixed precision's model-output sensitivity).</summary>
    public IOutputErrorProbe? OutputProbe { get; set; }

    /// <summary>Applies <paramref name="passes"/> to a fresh copy of the fixture and returns the model's bytes.</summary>
    public byte[] Apply(params IGraphPass[] passes)
    {
        using var model = FixtureModels.BuildModel(Options);
        var pipeline = new Pipeline();
        foreach (var p in passes) pipeline.Add(p);
        Last = PassRun.Analyses(Stats);
        if (BlockEvaluator is not null)
            Last.Set(BlockEvaluator);
        if (OutputProbe is not null)
            Last.Set(OutputProbe);
        pipeline.Run(model, new PassContext { Analyses = Last });
        using var temp = new TempFolder();
        string path = temp.File("model.onnx");
        ModelFile.Save(model, path, new SaveOptions { ExternalThreshold = long.MaxValue });
        return File.ReadAllBytes(path);
    }

    public Dictionary<string, OrtResult> Run(Onnx.ModelProto proto) => Run(proto.ToByteArray());

    public Dictionary<string, OrtResult> Run(byte[] model)
    {
        using var runner = new OrtRunner(model);
        return runner.Run(HeldOut);
    }

    /// <summary>Mean squared difference to the float model's output, relative to that output's mean square.</summary>
    public double RelativeError(Dictionary<string, OrtResult> outputs, string name)
    {
        var a = outputs[name].Values;
        var b = Reference[name].Values;
        Assert.Equal(b.Length, a.Length);
        double diff = 0, power = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff += (a[i] - b[i]) * (double)(a[i] - b[i]);
            power += b[i] * (double)b[i];
        }
        return diff / power;
    }
}
