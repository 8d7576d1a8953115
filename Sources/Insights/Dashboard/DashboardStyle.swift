/// The dashboard's stylesheet, served as a file so the page's policy can forbid inline styles. Readable on a phone
/// (one column below 46em), dark when the system is, contrast above WCAG AA for text.
public enum DashboardStyle {
    public static let css: String = {
        var css = """
            :root{color-scheme:light dark;--bg:#fbfbfa;--fg:#1d1d1f;--muted:#55595f;--line:#d9dbde;--accent:#1d5fd6;--bar:#dfe9fb}
            @media (prefers-color-scheme:dark){:root{--bg:#16181b;--fg:#eceef1;--muted:#a9afb7;--line:#30343a;--accent:#8ab4ff;--bar:#1f3257}}
            *{box-sizing:border-box}
            body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
            header,main,footer{max-width:72em;margin:0 auto;padding:0 1em}
            header{padding-top:1em}
            .brand{margin:0;color:var(--muted);font-size:.85em;letter-spacing:.04em;text-transform:uppercase}
            .brand span{color:var(--accent)}
            h1{margin:.2em 0 .4em;font-size:1.5em}
            h2{font-size:1em;margin:0 0 .5em}
            a{color:var(--accent)}
            a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
            nav ul{list-style:none;margin:0 0 .5em;padding:0;display:flex;flex-wrap:wrap;gap:.3em}
            nav a{display:inline-block;padding:.25em .7em;border:1px solid var(--line);border-radius:1em;text-decoration:none}
            nav a[aria-current]{background:var(--accent);border-color:var(--accent);color:var(--bg)}
            .tabs a{font-size:.85em;padding:.1em .6em}
            caption{text-align:left;font-size:.85em;color:var(--muted);padding:.2em 0}
            .filters li{padding:.25em .6em;border-radius:1em;background:var(--bar)}
            .filters li.bots{background:none}
            .filters a{border:0;padding:0 .2em}
            form.custom{margin:0 0 .8em;color:var(--muted)}
            form.custom input,form.custom button{font:inherit;padding:.15em .4em}
            .headline{display:grid;grid-template-columns:repeat(auto-fit,minmax(9em,1fr));gap:.5em;margin:1em 0}
            .headline div{border:1px solid var(--line);border-radius:.5em;padding:.6em .8em}
            .headline dt{color:var(--muted);font-size:.85em}
            .headline dd{margin:0;font-size:1.5em;font-weight:600}
            .change{display:block;font-size:.55em;font-weight:400;color:var(--muted)}
            .chart{width:100%;height:auto;display:block}
            .chart rect{fill:var(--accent)}
            .chart text{fill:var(--muted);font-size:12px}
            .chart .end{text-anchor:end}
            details{margin:.3em 0 1em;color:var(--muted)}
            .panels{display:grid;grid-template-columns:1fr 1fr;gap:1.5em 2em}
            @media (max-width:46em){.panels{grid-template-columns:1fr}}
            table{width:100%;border-collapse:collapse}
            th,td{padding:.3em .4em;border-bottom:1px solid var(--line);text-align:right;font-variant-numeric:tabular-nums}
            th[scope=row],thead th:first-child{text-align:left;font-weight:400;width:60%;overflow-wrap:anywhere}
            thead th{color:var(--muted);font-size:.85em;font-weight:400}
            table.events th,table.events td{text-align:left;white-space:nowrap;width:auto}
            table.events th[scope=row],table.events thead th:first-child{width:1%}
            table.events td:nth-child(3){width:100%;white-space:normal;overflow-wrap:break-word}
            @media (max-width:46em){table.events td,table.events thead th{white-space:normal}}
            .scroll{overflow-x:auto}
            a.bar{display:block;text-decoration:none;color:var(--fg);padding:.1em .3em;border-radius:.2em}
            a.bar:hover{text-decoration:underline}
            td.empty{text-align:left;color:var(--muted)}
            .edge{margin-top:2.5em;border-top:1px solid var(--line);padding-top:1em}
            h3{font-size:.95em;margin:0 0 .4em}
            .download{margin:.3em 0 0;text-align:right;font-size:.85em}
            .hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
            footer{color:var(--muted);font-size:.85em;padding:2em 1em}
            .login{max-width:24em;margin:4em auto;padding:0 1em}
            .login input,.login button{font:inherit;padding:.4em .6em;width:100%;margin:.3em 0}
            .error{color:#b3261e}

            """
        // Row bars as classes (the policy allows no inline style): w0 to w100 in steps of 5.
        for share in stride(from: 0, through: 100, by: 5) {
            css += "a.w\(share){background:linear-gradient(90deg,var(--bar) \(share)%,transparent \(share)%)}\n"
        }
        return css
    }()
}
