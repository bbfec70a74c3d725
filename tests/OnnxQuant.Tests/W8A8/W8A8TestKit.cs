using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Statistics;

namespace OnnxQuant.Tests.W8A8;

/// <summary>Fixture plumbing for the smoothing and W8A8 tests: token batches, calibration, running a model in ORT CPU.</summary>
internal static class W8A8TestKit
{
    /// <summary><paramref name="count"/> windows of seeded random token ids in [1, vocab).</summary>
    public static int[][] Tokens(int vocab, int count, int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => random.Next(1, vocab)).ToArray()).ToArray();
    }

    public static CalibrationStats Calibrate(OnnxModel model, int vocab, int samples = 48, int length = 32, int seed = 1)
    {
        var data = new CalibrationDataset(Tokens(vocab, samples, length, seed), length, "random tokens", "none");
        var settings = new SessionSettings { Device = ExecutionDevice.Cpu, Threads = 1, Optimization = GraphOptimizationLevel.ORT_ENABLE_BASIC };
        return Calibrator.Run(model, data, new CalibrationOptions { SampleRowsPerTensor = 256, Seed = seed }, settings).Stats;
    }

    public static byte[] Serialize(OnnxModel model) => SessionProto.Build(model, out _).ToByteArray();

    /// <summary>The model's first output (logits or hidden states) for each window, concatenated, as float32.</summary>
    public static float[] Run(byte[] model, IReadOnlyList<int[]> windows)
    {
        using var options = Options();
        using var session = new InferenceSession(model, options);
        return Run(session, windows);
    }

    /// <summary>As <see cref="Run(byte[], IReadOnlyList{int[]})"/> for a model file (its external data beside it).</summary>
    public static float[] Run(string modelPath, IReadOnlyList<int[]> windows)
    {
        using var options = Options();
        using var session = new InferenceSession(modelPath, options);
        return Run(session, windows);
    }

    private static SessionOptions Options() => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
        IntraOpNumThreads = 1,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
    };

    private static float[] Run(InferenceSession session, IReadOnlyList<int[]> windows)
    {
        string output = session.OutputNames[0];
        var result = new List<float>();
        foreach (var window in windows)
        {
            var (names, values) = InputFeeds.Build(session.InputMetadata, [window], "test model");
            try
            {
                using var runOptions = new RunOptions();
                using var outputs = session.Run(runOptions, names, values, [output]);
                var info = outputs[0].GetTensorTypeAndShape();
                if (info.ElementDataType == TensorElementType.Float16)
                    foreach (var h in MemoryMarshal.Cast<Float16, Half>(outputs[0].GetTensorDataAsSpan<Float16>()))
                        result.Add((float)h);
                else
                    result.AddRange(outputs[0].GetTensorDataAsSpan<float>().ToArray());
            }
            finally
            {
                foreach (var v in values) v.Dispose();
            }
        }
        return result.ToArray();
    }

    /// <summary>||a - b|| / ||a||.</summary>
    public static double RelativeError(float[] reference, float[] other)
    {
        Assert.Equal(reference.Length, other.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = (double)other[i] - reference[i];
            diff += d * d;
            norm += (double)reference[i] * reference[i];
        }
        return Math.Sqrt(diff / norm);
    }

    /// <summary>Smooths (unless <paramref name="smooth"/> is null) and rewrites <paramref name="model"/> in place (the smooth preset); returns the passes' reports.</summary>
    public static (SmoothingReport? Smooth, W8A8Report Rewrite) Quantize(OnnxModel model, CalibrationStats stats, W8A8Options w8a8,
        SmoothQuantOptions? smooth, OnnxQuant.Analysis.LinearSelection? selection = null)
    {
        var analyses = OnnxQuant.Tests.Support.PassRun.Analyses(stats);
        Presets.Smooth(selection ?? new OnnxQuant.Analysis.LinearSelection(), smooth, w8a8).Build().Run(model, new PassContext { Analyses = analyses });
        return (analyses.Find<SmoothingReport>(), analyses.Get<W8A8Report>("test"));
    }

    public static FixtureOptions OutlierLlama(bool fp16 = false) => new()
    {
        Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 256,
        OutlierChannels = 3, OutlierScale = 50f, Seed = 7, Fp16 = fp16,
    };
}
