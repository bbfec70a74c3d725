using System.Text.Json;
using OnnxQuant.Cli;
using OnnxQuant.Tests.Smoothing;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.W8A8;

/// <summary>Runs only with ONNXQUANT_MINILM=1 or CI=true, and when models/minilm was fetched (it takes minutes).</summary>
public sealed class MiniLmFactAttribute : FactAttribute
{
    public static string ModelPath => Path.Combine(RealModelFoldTests.RepoRoot(), "models", "minilm", "model.onnx");

    public MiniLmFactAttribute()
    {
        bool wanted = Environment.GetEnvironmentVariable("ONNXQUANT_MINILM") == "1"
            || string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        if (!wanted)
            Skip = "slow (minutes): set ONNXQUANT_MINILM=1 (or CI=true) to run";
        else if (!File.Exists(ModelPath))
            Skip = "models/minilm/model.onnx is missing: run models/fetch-minilm.sh";
    }
}

/// <summary>
/// The acceptance bar on the real MiniLM (mean-pooled sentence embeddings, calibrated on Emma, measured on 256
/// held-out Persuasion sentences): `onnxquant smooth` with default options reaches a mean cosine of at least 0.997 to
/// FP32, and --format dynamic at least 0.998.
/// </summary>
public class MiniLmAccuracyTests(ITestOutputHelper output)
{
    [MiniLmFact]
    public void DefaultInt8AndDynamicReachTheTargetCosines()
    {
        using var folder = new TempFolder();
        string stats = folder.File("minilm.calib");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(CliApp.Run(["calibrate", MiniLmFactAttribute.ModelPath, "-o", stats, "--json"], stdout, stderr) == 0, stderr.ToString());

        double Cosine(params string[] extra)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int code = CliApp.Run(["smooth", MiniLmFactAttribute.ModelPath, "--stats", stats, "-o", folder.File("out.onnx"), "--json", .. extra], o, e);
            Assert.True(code == 0, e.ToString());
            using var json = JsonDocument.Parse(o.ToString());
            double cosine = json.RootElement.GetProperty("verification").GetProperty("mean_cosine").GetDouble();
            output.WriteLine($"smooth {string.Join(' ', extra)}: mean cosine {cosine:F5}");
            return cosine;
        }

        Assert.True(Cosine() >= 0.997);
        Assert.True(Cosine("--format", "dynamic") >= 0.998);
    }
}
