using System.Runtime;

namespace OnnxQuant.Cli;

/// <summary>
/// Background JIT from a recorded profile (.NET's multicore JIT, as the dotnet CLI and PowerShell use for their own
/// start): each run of a command records which methods it compiled, and the next run of that command compiles them on
/// a spare core while the main thread is still parsing and loading. JIT compilation is ~0.6 s of a 2.3 s `awq --method
/// rtn` on the 4-layer 7B-wide model (the CLI compiles fully optimised from the start, see OnnxQuant.Cli.csproj); with
/// the profile, medians of 6 in alternation: rtn 2.36 -> 2.09 s, the W8 rewrite 2.76 -> 2.27 s. The profiles live in
/// $XDG_CACHE_HOME/onnxquant (else ~/.cache/onnxquant); ONNXQUANT_NO_JIT_PROFILE=1 turns this off. Nothing here can
/// fail a command: an unwritable folder or a damaged profile only means no background JIT.
/// </summary>
internal static class StartupJit
{
    public const string OptOut = "ONNXQUANT_NO_JIT_PROFILE";

    public static void Start(string[] args)
    {
        if (Environment.GetEnvironmentVariable(OptOut) is "1" or "true")
            return;
        try
        {
            string? cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(cache))
            {
                string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
                if (string.IsNullOrEmpty(home))
                    return;
                cache = Path.Combine(home, ".cache");
            }
            string folder = Path.Combine(cache, "onnxquant");
            Directory.CreateDirectory(folder);
            ProfileOptimization.SetProfileRoot(folder);
            ProfileOptimization.StartProfile(ProfileName(args));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
        }
    }

    /// <summary>One profile per command (they compile different methods), named by the command's word; anything else shares one.</summary>
    internal static string ProfileName(string[] args) =>
        (args.Length > 0 && args[0].Length is > 0 and <= 16 && args[0].All(char.IsAsciiLetterLower) ? args[0] : "other") + ".jitprofile";
}
