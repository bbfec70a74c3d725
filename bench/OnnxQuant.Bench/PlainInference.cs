using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

namespace OnnxQuant.Bench;

/// <summary>The baseline: the unmodified model run on the same windows with the same session settings, outputs fetched.</summary>
internal static class PlainInference
{
    /// <returns>Total time (session creation included) and the time of the inference loop alone.</returns>
    public static (TimeSpan Total, TimeSpan Loop) Run(OnnxModel model, CalibrationDataset data, SessionSettings settings, int batch)
    {
        var total = Stopwatch.StartNew();
        // What a user's inference does: load the model file as it is (fixtures, which have no file, from bytes).
        byte[] bytes = model.SourcePath is not null
            ? File.ReadAllBytes(model.SourcePath)
            : Google.Protobuf.MessageExtensions.ToByteArray(SessionProto.Build(model, out _));
        string? folder = model.SourcePath is null ? null : Path.GetDirectoryName(Path.GetFullPath(model.SourcePath));
        using var opened = SessionFactory.Open(bytes, settings, folder, "baseline");
        var outputNames = opened.Session.OutputMetadata.Keys.ToList();
        using var runOptions = new RunOptions();
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < data.Samples.Count; start += batch)
        {
            var samples = data.Samples.Skip(start).Take(batch).ToList();
            var (names, values) = InputFeeds.Build(opened.Session.InputMetadata, samples, "baseline");
            using (var outputs = opened.Session.Run(runOptions, names, values, outputNames)) { }
            foreach (var v in values) v.Dispose();
        }
        return (total.Elapsed, clock.Elapsed);
    }
}
