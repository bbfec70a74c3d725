using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// `onnxquant diff --numeric` on the Austen LM's outlier twin (docs/architecture.md, "Outlier twins"): without smoothing
/// the linears reading the injected outlier channels hurt most; SmoothQuant lowers their error.
/// </summary>
public sealed partial class NumericDiffTests(NumericDiffTests.Twin twin) : IClassFixture<NumericDiffTests.Twin>
{
    /// <summary>The twin, its W8A8 rewrites with --alpha none and auto, and their numeric diffs, made once for the class.</summary>
    public sealed class Twin : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("onnxquant-numeric-diff-").FullName;
        private readonly Lazy<(JsonElement None, JsonElement Auto, HashSet<string> OutlierFed)> _runs;

        public Twin() => _runs = new(Run);

        public JsonElement None => _runs.Value.None;

        public JsonElement Auto => _runs.Value.Auto;

        /// <summary>The linears whose input is a norm the twin scaled (q/k/v, gate/up), i.e. carries the outlier channels.</summary>
        public HashSet<string> OutlierFed => _runs.Value.OutlierFed;

        public string Model => Path.Combine(_dir, "model.onnx");

        /// <summary>The --alpha none rewrite (made by the first use of <see cref="None"/>).</summary>
        public string Unsmoothed => Path.Combine(_dir, "sq-none.onnx");

        public string Folder => _dir;

        private (JsonElement, JsonElement, HashSet<string>) Run()
        {
            string source = Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm");
            foreach (var file in new[] { "vocab.json", "merges.txt" })
                File.Copy(Path.Combine(source, file), Path.Combine(_dir, file));
            OutlierTwin.Write(Path.Combine(source, "model.onnx"), Model);
            HashSet<string> fed;
            using (var model = ModelFile.Load(Model))
                fed = SmoothingGroups.Find(model.Graph).Where(g => g.Producer.Kind == FoldKind.NormGamma)
                    .SelectMany(g => g.Consumers.Select(c => c.Name)).ToHashSet(StringComparer.Ordinal);
            return (Diff("none"), Diff("auto"), fed);
        }

        private JsonElement Diff(string alpha)
        {
            string output = Path.Combine(_dir, $"sq-{alpha}.onnx");
            var smooth = CliHarness.Run("smooth", Model, "-o", output, "--alpha", alpha, "--samples", "16", "--seq-len", "128", "--no-verify", "--json");
            Assert.True(smooth.ExitCode == 0, smooth.Error);
            var diff = CliHarness.Run("diff", Model, output, "--numeric", "--samples", "4", "--json", "--device", "cpu");
            Assert.True(diff.ExitCode == 0, diff.Error);
            return diff.Json().Clone();
        }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }

    // (linear, output relative error, error it adds over its input), in the report's order.
    private static List<(string Name, double Error, double Added)> Ranking(JsonElement json) =>
        json.GetProperty("numeric").GetProperty("linears").EnumerateArray()
            .Select(e => (e.GetProperty("linear").GetString()!, e.GetProperty("relative_error").GetDouble(), e.GetProperty("added_error").GetDouble())).ToList();

    [Fact]
    public void WithoutSmoothingTheOutlierFedLinearsRankFirst()
    {
        var ranking = Ranking(twin.None);
        var fed = twin.OutlierFed;

        Assert.True(fed.Count >= 10, $"{fed.Count} outlier-fed linears");
        Assert.Equal(twin.None.GetProperty("linears").GetArrayLength(), ranking.Count);
        // Worst first: the top of the ranking is the linears that read the x50 channels.
        var top = ranking.Take(fed.Count).Select(r => r.Name).ToList();
        Assert.True(top.Count(fed.Contains) >= fed.Count * 8 / 10,
            $"top {fed.Count}: {string.Join(", ", ranking.Take(fed.Count).Select(r => $"{r.Name} {r.Error:G3} (+{r.Added:G3})"))}");
        Assert.Contains(ranking[0].Name, fed);
        Assert.True(ranking.SequenceEqual(ranking.OrderByDescending(r => r.Added)), "sorted worst first");
        Assert.All(ranking, r => Assert.InRange(r.Error, 1e-6, 2));
        string exclude = twin.None.GetProperty("keep_worst_in_float").GetString()!;
        Assert.Equal(string.Join(" ", ranking.Take(3).Select(r => $"--exclude '{r.Name}'")), exclude);
    }

    [Fact]
    public void SmoothQuantLowersTheErrorOfTheOutlierFedLinearsAndOfTheOutput()
    {
        var none = Ranking(twin.None).ToDictionary(r => r.Name, r => r.Error);
        var auto = Ranking(twin.Auto).ToDictionary(r => r.Name, r => r.Error);
        var fed = twin.OutlierFed.Where(none.ContainsKey).ToList();

        double meanNone = fed.Average(n => none[n]), meanAuto = fed.Average(n => auto[n]);
        Assert.True(meanAuto < meanNone / 2, $"outlier-fed mean relative error: none {meanNone:G4}, auto {meanAuto:G4}");
        double outNone = Output(twin.None), outAuto = Output(twin.Auto);
        Assert.True(outAuto < outNone, $"output relative error: none {outNone:G4}, auto {outAuto:G4}");
        Assert.InRange(outNone, 1e-4, 1);
    }

    [Fact]
    public void RowsNameRolesSmoothingAndTheLmHeadKeptInFloat()
    {
        var rows = twin.Auto.GetProperty("linears").EnumerateArray().ToList();

        Assert.Equal(43, rows.Count); // 6 layers x (q, k, v, o, gate, up, down) + lm_head
        var head = Assert.Single(rows, r => r.GetProperty("scheme").GetString() == "Float");
        Assert.Equal(("/model/lm_head/MatMul", "Head", "LmHead"), (head.GetProperty("name").GetString(), head.GetProperty("role").GetString(), head.GetProperty("kept").GetString()));
        Assert.Equal(head.GetProperty("bytes_before").GetInt64(), head.GetProperty("bytes_after").GetInt64());
        Assert.Equal(["Query", "Key", "Value", "Output", "Gate", "Up", "Down"], rows.Take(7).Select(r => r.GetProperty("role").GetString()));
        // q/k/v read the RMSNorm (s folded into its gamma); o takes s through v's columns, down through up's.
        Assert.Equal(["NormGamma", "NormGamma", "NormGamma", "LinearColumns", "NormGamma", "NormGamma", "LinearColumns"],
            rows.Take(7).Select(r => r.GetProperty("smoothing").GetProperty("fold").GetString()));
        Assert.True(rows[2].GetProperty("output_rescaled").GetBoolean()); // v: its columns took o's s
        Assert.False(rows[0].GetProperty("output_rescaled").GetBoolean());
    }

    private static double Output(JsonElement json) => json.GetProperty("numeric").GetProperty("output").GetProperty("relative_error").GetDouble();
}
