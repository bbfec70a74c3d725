using System.Xml.Linq;
using OnnxQuant.Calibrate.Report;
using OnnxQuant.Statistics;

namespace OnnxQuant.Tests.Calibrate;

public sealed class ChannelReportTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("oq-report-").FullName;

    public void Dispose() => Directory.Delete(_folder, true);

    // 64 channels around 1.0 with channel 17 at 40 and channel 5 at 9: the picture must single them out.
    private static ActivationStats Tensor(string name, int outlier)
    {
        var absMax = Enumerable.Range(0, 64).Select(c => 1f + 0.01f * c).ToArray();
        absMax[outlier] = 40f;
        absMax[5] = 9f;
        return new ActivationStats(name, absMax, absMax.Select(x => x / 4).ToArray(), -3f, 40f, 100, new float[64], 1);
    }

    private static CalibrationStats Stats() => new("abc123def4567890", new CalibrationInfo { Samples = 2, SequenceLength = 50, Data = "emma.txt" },
        [Tensor("layer0/ln_out", 17), Tensor("layer1/ln_out", 30), Tensor("layer1/mlp_act", 40)]);

    [Fact]
    public void The_svg_draws_one_bar_per_channel_and_labels_the_outliers()
    {
        string path = Path.Combine(_folder, "r.svg");
        ChannelReport.Write(Stats(), path, new ReportOptions { Tensors = ["layer0"] });
        var svg = XDocument.Load(path); // well-formed XML
        XNamespace ns = "http://www.w3.org/2000/svg";
        var texts = svg.Descendants(ns + "text").Select(t => t.Value).ToList();
        Assert.Contains("layer0/ln_out", texts);
        Assert.DoesNotContain("layer1/ln_out", texts);
        Assert.Contains(texts, t => t.StartsWith("ch 17: 40"));
        Assert.Contains(texts, t => t.StartsWith("ch 5: 9"));
        var bars = svg.Descendants(ns + "path").First(p => (string?)p.Attribute("fill") == "#3b6fb6");
        Assert.Equal(64, bars.Attribute("d")!.Value.Count(ch => ch == 'z'));
    }

    [Fact]
    public void The_html_page_ranks_all_tensors_and_embeds_the_chosen_panels()
    {
        string path = Path.Combine(_folder, "r.html");
        ChannelReport.Write(Stats(), path);
        string html = File.ReadAllText(path);
        Assert.Equal(3, html.Split("<tr><td>").Length - 1);
        Assert.Equal(3, html.Split("channels, max/median").Length - 1);
        Assert.Contains("17 (40", html);
    }

    [Fact]
    public void An_unknown_format_or_tensor_is_a_usage_error()
    {
        Assert.Equal(ExitCode.Usage, Assert.Throws<OnnxQuantException>(() => ChannelReport.Write(Stats(), Path.Combine(_folder, "r.png"))).ExitCode);
        var e = Assert.Throws<OnnxQuantException>(() => ChannelReport.Write(Stats(), Path.Combine(_folder, "r.svg"), new ReportOptions { Tensors = ["nothing"] }));
        Assert.Contains("'nothing'", e.Message);
    }

    [Fact]
    public void The_outlier_summary_ranks_channels_by_max_over_median()
    {
        var o = OutlierSummary.For(Tensor("t", 17), 2);
        Assert.Equal(new[] { 17, 5 }, o.Top.Select(c => c.Channel));
        float median = Tensor("t", 17).MedianAbsMax();
        Assert.Equal(40f / median, o.Top[0].Ratio, 4);
    }
}
